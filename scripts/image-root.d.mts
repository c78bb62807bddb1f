/** Types of scripts/image-root.mjs for the tests that read the Dockerfile through it. */
export const KMOD_CONFIG_DIRS: string[];
export interface Instruction { op: string; args: string }
export interface ImagePlan {
  suite: string;
  from: string;
  steps: ({ run: string; env: Record<string, string> } | { copy: string; to: string })[];
  env: Record<string, string>;
  labels: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  healthcheck: { options: string[]; cmd: string[] } | undefined;
}
export function parseDockerfile(text: string): Instruction[];
export function stages(instructions: Instruction[]): { from: string; name: string | undefined; steps: Instruction[] }[];
export function keyValues(args: string): Record<string, string>;
export function imagePlan(text: string): ImagePlan;
export function buildRoot(plan: ImagePlan, packageRoot: string, out: string): void;
export function checkRoot(root: string, plan: ImagePlan, version: string): Promise<{ name: string; ok: boolean; detail: string }[]>;

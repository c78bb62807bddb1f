// Lint: typescript-eslint's recommended rules, the type-aware rules that catch
// lost promises, and the layer rules of the source tree (README "Layout"):
// - src/core is pure: no file system, processes, sockets, native add-ons (node:os
//   is allowed for its constant tables: errno names, endianness), and
//   nothing from sys/, commands/ or the daemon;
// - src/sys is the system layer: it never reaches up into commands/ or the daemon;
// - src/control (the control socket: protocol, server, handlers, client) is
//   used by commands and never reaches up into commands/;
// - commands share through commands/common.ts and commands/daemon-setup.ts,
//   never by importing a sibling command.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const SYSTEM_MODULES = ['fs', 'fs/promises', 'child_process', 'net', 'dgram', 'worker_threads', 'cluster', 'process'].flatMap((m) => [`node:${m}`, m]);

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.cache/', 'build/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
  },
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: { allowDefaultProject: ['vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...SYSTEM_MODULES, 'koffi', 'netlink', 'pino'].map((name) => ({ name, message: 'src/core is pure: system access belongs in src/sys (injected)' })),
          patterns: [{ group: ['**/sys/*', '**/commands/*', '**/daemon*', 'netlink/*'], message: 'src/core depends on nothing above it' }],
        },
      ],
    },
  },
  {
    files: ['src/sys/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/commands/*', '**/daemon*'], message: 'src/sys is the bottom layer: commands and the daemon use it, not the reverse' }] }],
    },
  },
  {
    files: ['src/control/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/commands/*'], message: 'src/control serves the commands: it does not import them' }] }],
    },
  },
  {
    files: ['src/commands/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['./*', '!./common.js', '!./daemon-setup.js'], message: 'commands share through common.ts and daemon-setup.ts, not by importing a sibling command' },
          ],
        },
      ],
    },
  },
);

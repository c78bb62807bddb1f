/** Test indexes built in memory. */
import { indexFromDepmod } from '../../src/core/index/from-depmod.js';
import { ModuleIndex } from '../../src/core/index/module-index.js';

/** A chain m0 <- m1 <- ... with depmod's closure per module (nearest first), built in memory: as text it would be 40 MB. */
export function chainIndex(n: number): ModuleIndex {
  let dep = '';
  for (let i = 0; i < n; i++) dep += `m${i}.ko:\n`;
  const parts = indexFromDepmod({ dir: '/x', alias: `alias dev:top m${n - 1}\n`, dep });
  for (let i = 1; i < n; i++) {
    const deps = parts.modules[i]!.deps;
    for (let j = i - 1; j >= 0; j--) deps.push(j);
  }
  return new ModuleIndex(parts);
}

import { openDataset, type DatasetItem } from '../data/dataset.js';
import { RuleditError } from '../errors.js';
import type { StyleName } from '../synth/styles.js';
import type { Sample, TestSets } from './scenes.js';

/**
 * Where the editor's images come from, behind one interface: the built-in scene world
 * (scenes.ts) or the user's labelled `--data` folders. The workbench asks it and keeps what it
 * gives; it never asks which one it is.
 */
export interface TestSources {
  /** Exemplars the page offers to start from. */
  samples: Sample[];
  /** Whether the test sets change with the style the page chose (generated test scenes do). */
  styled: boolean;
  /** Test and clean images, before and after an edit. */
  testSets(style: StyleName): Promise<TestSets>;
  /** Reference images: the key statistics and the safety guard's held-out share. */
  reference(): Promise<DatasetItem[]>;
}

/** The test sets a labelled test folder gives at most, and the reference images all folders give. */
const MAX_TEST = 500;
const MAX_REFERENCE = 1000;

/** The user's folders: the first labelled one tests, all of them are reference images. */
export function folderSources(dirs: string[]): TestSources {
  const open = (dir: string) => openDataset(dir).catch(() => undefined);
  return {
    samples: [],
    styled: false,
    async testSets() {
      for (const dir of dirs) {
        const items = (await open(dir))?.items.filter((i) => i.label !== undefined) ?? [];
        if (items.length) {
          const set = { title: dir, items: items.slice(0, MAX_TEST) };
          return { test: set, clean: { ...set } };
        }
      }
      throw new RuleditError(
        'no-test-set',
        'no labelled test folder: start the server with --data DIR (class folders or labels.csv)',
      );
    },
    async reference() {
      const items: DatasetItem[] = [];
      for (const dir of dirs) items.push(...((await open(dir))?.items ?? []));
      if (!items.length)
        throw new RuleditError(
          'no-stats',
          'the rewrite needs reference images for its key statistics: start the server with --data DIR',
        );
      return items.slice(0, MAX_REFERENCE);
    },
  };
}

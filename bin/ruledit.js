#!/usr/bin/env node
// ruledit ships TypeScript sources; tsx compiles them on the fly so `npx ruledit` needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');

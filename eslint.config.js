// ESLint (flat config): typescript-eslint's type-checked recommended rules over the TypeScript
// sources (lib/, test/, bench/), plain recommended rules over the JavaScript (the bin/ launcher,
// the web UI's browser script, this file). `npm run lint`; `npm test` runs it first.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'coverage/', 'node_modules/', 'packages-dir-example/', 'test-output/'] },
  // No eslint-disable comments: a finding is fixed, or the rule is changed here with a reason.
  { linterOptions: { noInlineConfig: true, reportUnusedDisableDirectives: 'error' } },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Rule changes (keep them few, each with its reason):
      // - no-control-regex: the control-character classes are the point of those regexes
      //   (rejecting control characters in upload filenames and download paths, blanking them out
      //   of HTTP reason phrases), and eslint-disable comments are not used in this code base.
      'no-control-regex': 'off',
      // - no-unused-vars: Express tells error middleware by its four parameters, so an unused
      //   `_next` must stay (a leading underscore marks such a parameter); and leaving a key out of
      //   an object by rest destructuring (`const { style: _style, ...rest } = attribs`) is the
      //   idiom for "copy without", not an unused variable.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // The launcher: a Node ESM script without an extension.
    files: ['bin/pypi-lite', 'eslint.config.js'],
    extends: [js.configs.recommended],
    languageOptions: {
      sourceType: 'module',
      globals: { console: 'readonly', process: 'readonly' },
    },
  },
  {
    // Served to browsers as a classic script (progressive enhancement only).
    files: ['lib/ui/static/**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', navigator: 'readonly', setTimeout: 'readonly' },
    },
  },
);

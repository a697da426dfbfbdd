// Lint and format as Effect's own v3 repository does (its eslint.config.mjs is the model):
// eslint + typescript-eslint, formatting by dprint through @effect/eslint-plugin.
// `npm run lint` checks, `npm run lint:fix` formats and applies the other fixes.
import * as effectEslint from "@effect/eslint-plugin"
import js from "@eslint/js"
import importPlugin from "eslint-plugin-import"
import sortDestructureKeys from "eslint-plugin-sort-destructure-keys"
import { defineConfig } from "eslint/config"
import tseslint from "typescript-eslint"

export default defineConfig(
  {
    ignores: ["**/dist/**", "**/node_modules/**", "**/*.md"]
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  effectEslint.configs.dprint,
  {
    plugins: {
      import: importPlugin,
      "sort-destructure-keys": sortDestructureKeys
    },
    languageOptions: {
      parser: tseslint.parser,
      ecmaVersion: "latest",
      sourceType: "module"
    },
    rules: {
      "no-fallthrough": "off",
      "no-irregular-whitespace": "off",
      "object-shorthand": "error",
      "prefer-destructuring": "off",
      "sort-imports": "off",
      "no-restricted-syntax": [
        "error",
        {
          selector: "CallExpression[callee.property.name='push'] > SpreadElement.arguments",
          message: "Do not use spread arguments in Array.push"
        },
        // Effect allows `any` (it needs it in type parameters); this project forbids casting to it.
        { selector: "TSAsExpression > TSAnyKeyword", message: "Do not cast to any" }
      ],
      "no-unused-vars": "off",
      "require-yield": "off",
      "prefer-rest-params": "off",
      "prefer-spread": "off",
      "import/first": "error",
      "import/newline-after-import": "error",
      "import/no-duplicates": "error",
      "sort-destructure-keys/sort-destructure-keys": "error",

      "@typescript-eslint/array-type": ["warn", { default: "generic", readonly: "generic" }],
      "@typescript-eslint/consistent-type-imports": "warn",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-unsafe-function-type": "off",
      "@typescript-eslint/no-wrapper-object-types": "off",
      "@typescript-eslint/no-array-constructor": "off",
      "@typescript-eslint/no-use-before-define": "off",
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-explicit-any": "off",
      // Effect turns this off; this project allows no @ts-ignore, so it stays on (typescript-eslint's default).
      "@typescript-eslint/ban-ts-comment": "error",

      "@effect/dprint": [
        "error",
        {
          config: {
            indentWidth: 2,
            lineWidth: 120,
            semiColons: "asi",
            quoteStyle: "alwaysDouble",
            trailingCommas: "never",
            operatorPosition: "maintain",
            "arrowFunction.useParentheses": "force"
          }
        }
      ]
    }
  },
  {
    // The library and its tests talk through Effect's logger and the CLI's own output, never the console.
    files: ["src/**/*", "test/**/*.test.ts"],
    rules: {
      "no-console": "error"
    }
  },
  {
    files: ["src/**/*"],
    rules: {
      // One module per import keeps the bundle of a user who imports one combinator small.
      "@effect/no-import-from-barrel-package": ["error", { packageNames: ["effect"] }]
    }
  }
)

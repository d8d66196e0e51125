import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Every exported symbol of every entry point, and every member of an exported class, interface
 * or object type declared in `src/`, carries at least one line of TSDoc: that is what an editor
 * shows a user on hover, and what the npm page's types show.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The entry points, as the build names them (tsup.config.ts `entry`). */
function entryPoints(): string[] {
  const config = readFileSync(join(root, 'tsup.config.ts'), 'utf8');
  return [...config.matchAll(/^\s+[\w-]+: '(src\/[^']+\.ts)'/gm)].map((m) => join(root, m[1] as string));
}

function isOwn(declaration: ts.Declaration): boolean {
  const file = declaration.getSourceFile().fileName;
  return file.startsWith(join(root, 'src')) && !file.endsWith('.d.ts');
}

function isDocumented(symbol: ts.Symbol, checker: ts.TypeChecker): boolean {
  if (symbol.getDocumentationComment(checker).length > 0) return true;
  // An overload set or an accessor pair is documented when one of its declarations is.
  return (symbol.declarations ?? []).some((d) => ts.getJSDocCommentsAndTags(d).length > 0);
}

function isHidden(declaration: ts.Declaration): boolean {
  const flags = ts.getCombinedModifierFlags(declaration);
  if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return true;
  if (ts.isConstructorDeclaration(declaration)) return true;
  const name = ts.getNameOfDeclaration(declaration);
  return name !== undefined && ts.isPrivateIdentifier(name);
}

function undocumented(): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    join(root, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: () => {},
    },
  );
  if (!parsed) throw new Error('tsconfig.json did not parse');
  const entries = entryPoints();
  const program = ts.createProgram(entries, parsed.options);
  const checker = program.getTypeChecker();
  const missing = new Set<string>();
  const seen = new Set<ts.Symbol>();

  const where = (d: ts.Declaration) => {
    const file = d.getSourceFile();
    const { line } = file.getLineAndCharacterOfPosition(d.getStart());
    return `${relative(root, file.fileName)}:${line + 1}`;
  };

  const visitMembers = (owner: string, symbol: ts.Symbol) => {
    const members = [...(symbol.members?.values() ?? []), ...(symbol.exports?.values() ?? [])];
    for (const member of members) {
      if (member.flags & ts.SymbolFlags.TypeParameter) continue;
      const declarations = (member.declarations ?? []).filter(isOwn);
      if (declarations.length === 0 || declarations.some(isHidden)) continue;
      if (member.escapedName === '__constructor' || member.escapedName === 'prototype') continue;
      if (!isDocumented(member, checker)) {
        missing.add(`${owner}.${member.getName()} (${where(declarations[0] as ts.Declaration)})`);
      }
    }
  };

  const visit = (name: string, exported: ts.Symbol) => {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (seen.has(symbol)) return;
    seen.add(symbol);
    const declarations = (symbol.declarations ?? []).filter(isOwn);
    if (declarations.length === 0) return;
    if (!isDocumented(symbol, checker)) missing.add(`${name} (${where(declarations[0] as ts.Declaration)})`);
    if (symbol.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface | ts.SymbolFlags.Enum)) {
      visitMembers(name, symbol);
    }
    for (const declaration of declarations) {
      // `type X = { ... }` and `type X = A & { ... }`: the literal's members are the type's API.
      if (!ts.isTypeAliasDeclaration(declaration)) continue;
      const literals: ts.TypeLiteralNode[] = [];
      const collect = (node: ts.TypeNode) => {
        if (ts.isTypeLiteralNode(node)) literals.push(node);
        else if (ts.isIntersectionTypeNode(node)) node.types.forEach(collect);
      };
      collect(declaration.type);
      for (const literal of literals) {
        for (const member of literal.members) {
          const memberSymbol = member.name && checker.getSymbolAtLocation(member.name);
          if (memberSymbol && !isDocumented(memberSymbol, checker)) {
            missing.add(`${name}.${memberSymbol.getName()} (${where(member)})`);
          }
        }
      }
    }
  };

  for (const entry of entries) {
    const source = program.getSourceFile(entry);
    const module = source && checker.getSymbolAtLocation(source);
    if (!module) throw new Error(`no module symbol for ${entry}`);
    for (const exported of checker.getExportsOfModule(module)) visit(exported.getName(), exported);
  }
  return [...missing].sort();
}

describe('TSDoc', () => {
  it('documents every exported symbol and every public member, in every entry point', () => {
    const missing = undocumented();
    expect(missing, `undocumented:\n${missing.join('\n')}\n`).toEqual([]);
  });
});

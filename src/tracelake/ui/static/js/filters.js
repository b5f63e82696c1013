// Building filter strings for the search grammar (docs/search.md) from quick filters.

/** A string literal of the grammar: single quotes, with \ and ' escaped. */
export function quote(value) {
  return "'" + String(value).replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
}

/** ``tags.key`` with the key backquoted when it is not a plain word. */
export function keyRef(prefix, key) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${prefix}.${key}` : `${prefix}.\`${key.replace(/`/g, "")}\``;
}

export function hasClause(filter, clause) {
  return splitAnd(filter).includes(clause);
}

/** Top-level AND parts, or [filter] when it has a top-level OR or parentheses we keep whole. */
function splitAnd(filter) {
  const f = (filter || "").trim();
  if (!f) return [];
  const parts = [];
  let depth = 0, quote = null, start = 0;
  for (let i = 0; i < f.length; i++) {
    const c = f[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === "'" || c === '"' || c === "`") quote = c;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (depth === 0 && /\s/.test(c)) {
      const rest = f.slice(i + 1);
      const m = /^(AND|OR)\s/i.exec(rest);
      if (m && m[1].toUpperCase() === "OR") return [f];
      if (m) { parts.push(f.slice(start, i).trim()); start = i + 1 + m[0].length; i = start - 1; }
    }
  }
  parts.push(f.slice(start).trim());
  return parts.filter(Boolean);
}

export function addClause(filter, clause) {
  const parts = splitAnd(filter);
  if (parts.includes(clause)) return filter.trim();
  if (parts.length === 1 && parts[0] === (filter || "").trim() && /\sOR\s/i.test(filter)) return `(${filter.trim()}) AND ${clause}`;
  return [...parts, clause].join(" AND ");
}

export function removeClause(filter, clause) {
  return splitAnd(filter).filter((p) => p !== clause).join(" AND ");
}

/** Replace any clause starting with ``prefix`` by ``clause`` (or drop it when clause is null). */
export function replaceClause(filter, prefix, clause) {
  const parts = splitAnd(filter).filter((p) => !p.startsWith(prefix));
  if (clause) parts.push(clause);
  return parts.join(" AND ");
}

export function findClause(filter, prefix) {
  return splitAnd(filter).find((p) => p.startsWith(prefix)) || null;
}

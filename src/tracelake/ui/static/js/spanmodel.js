// The span tree of one trace, held as columns (typed arrays where possible) so 30,000
// spans cost a few megabytes, and flattened into the list of visible rows on demand.

export class SpanModel {
  constructor() {
    this.ids = [];
    this.parentIds = [];
    this.nameIdx = [];
    this.typeIdx = [];
    this.start = [];
    this.dur = [];
    this.status = [];
    this.tokens = [];
    this.cost = [];
    this.names = [];
    this.types = [];
    this.index = new Map(); // span id -> row
    this.collapsed = new Set(); // rows whose children are hidden
    this.visible = new Int32Array(0);
    this.baseMs = 0;
  }

  get size() { return this.ids.length; }
  name(i) { return this.names[this.nameIdx[i]]; }
  type(i) { return this.types[this.typeIdx[i]]; }

  /** Add one page of /api/tracelake/traces/{id}/spans (names and types re-coded to ours). */
  addPage(page) {
    this.baseMs = page.base_ms;
    const nameMap = page.names.map((n) => this.code(this.names, this.nameCodes ||= new Map(), n));
    const typeMap = page.types.map((t) => this.code(this.types, this.typeCodes ||= new Map(), t));
    for (let k = 0; k < page.id.length; k++) {
      const i = this.ids.length;
      this.index.set(page.id[k], i);
      this.ids.push(page.id[k]);
      this.parentIds.push(page.parent[k]);
      this.nameIdx.push(nameMap[page.name[k]]);
      this.typeIdx.push(typeMap[page.type[k]]);
      this.start.push(page.start[k]);
      this.dur.push(page.dur[k]);
      this.status.push(page.status[k]);
      this.tokens.push(page.tokens[k]);
      this.cost.push(page.cost[k]);
    }
    this.build();
  }

  code(list, codes, value) {
    let c = codes.get(value);
    if (c === undefined) { c = list.length; list.push(value); codes.set(value, c); }
    return c;
  }

  /** Parents, children (in start order), depths, time bounds, error marks. O(n). */
  build() {
    const n = this.size;
    this.parent = new Int32Array(n).fill(-1);
    const childCount = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const p = this.parentIds[i] ? this.index.get(this.parentIds[i]) : undefined;
      if (p !== undefined && p !== i) { this.parent[i] = p; childCount[p]++; }
    }
    // Children as one flat array with offsets (CSR): rows arrive in start order already.
    this.childStart = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) this.childStart[i + 1] = this.childStart[i] + childCount[i];
    this.children = new Int32Array(this.childStart[n]);
    const fill = this.childStart.slice(0, n);
    this.roots = [];
    for (let i = 0; i < n; i++) {
      const p = this.parent[i];
      if (p === -1) this.roots.push(i);
      else this.children[fill[p]++] = i;
    }
    this.depth = new Int32Array(n);
    this.errorBelow = new Uint8Array(n);
    let t0 = Infinity, t1 = -Infinity;
    let order = this.preorder(false);
    if (order.length < n) { // spans on a parent cycle: show them as roots
      const reached = new Uint8Array(n);
      for (const i of order) reached[i] = 1;
      for (let i = 0; i < n; i++) if (!reached[i]) { this.parent[i] = -1; this.roots.push(i); }
      order = this.preorder(false);
    }
    for (const i of order) {
      const p = this.parent[i];
      this.depth[i] = p === -1 ? 0 : this.depth[p] + 1;
      t0 = Math.min(t0, this.start[i]);
      t1 = Math.max(t1, this.start[i] + (this.dur[i] ?? 0));
    }
    for (let k = order.length - 1; k >= 0; k--) {
      const i = order[k];
      const p = this.parent[i];
      if (p !== -1 && (this.status[i] === "ERROR" || this.errorBelow[i])) this.errorBelow[p] = 1;
    }
    this.t0 = Number.isFinite(t0) ? t0 : 0;
    this.t1 = Number.isFinite(t1) ? Math.max(t1, this.t0 + 1) : 1;
    this.flatten();
  }

  hasChildren(i) { return this.childStart[i + 1] > this.childStart[i]; }
  firstChild(i) { return this.hasChildren(i) ? this.children[this.childStart[i]] : -1; }

  /** Rows depth-first; with ``respectCollapsed`` the children of collapsed rows are skipped. */
  preorder(respectCollapsed) {
    const out = new Int32Array(this.size);
    const seen = new Uint8Array(this.size); // guards against parent cycles in bad data
    let n = 0;
    const stack = [];
    for (let r = this.roots.length - 1; r >= 0; r--) stack.push(this.roots[r]);
    while (stack.length) {
      const i = stack.pop();
      if (seen[i]) continue;
      seen[i] = 1;
      out[n++] = i;
      if (respectCollapsed && this.collapsed.has(i)) continue;
      for (let c = this.childStart[i + 1] - 1; c >= this.childStart[i]; c--) stack.push(this.children[c]);
    }
    return out.subarray(0, n);
  }

  flatten() {
    this.visible = this.preorder(true);
    this.position = new Int32Array(this.size).fill(-1);
    for (let k = 0; k < this.visible.length; k++) this.position[this.visible[k]] = k;
  }

  toggle(i, open) {
    if (!this.hasChildren(i)) return false;
    const isOpen = !this.collapsed.has(i);
    const want = open === undefined ? !isOpen : open;
    if (want === isOpen) return false;
    if (want) this.collapsed.delete(i); else this.collapsed.add(i);
    this.flatten();
    return true;
  }

  /** Open every ancestor of ``i`` so that it is visible. */
  reveal(i) {
    let changed = false;
    for (let p = this.parent[i]; p !== -1; p = this.parent[p]) {
      if (this.collapsed.delete(p)) changed = true;
    }
    if (changed) this.flatten();
  }
}

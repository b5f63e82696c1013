// A virtual list: fixed row height, only the rows in view (plus a margin) exist in the DOM.
// Rows are recycled by slot (index % pool size), so scrolling by one row re-renders one row.

export class VirtualList {
  /**
   * @param {HTMLElement} scroller  the element that scrolls (gets a sizer child)
   * @param {{rowHeight:number, createRow:()=>HTMLElement, renderRow:(el:HTMLElement,i:number)=>void,
   *          overscan?:number, onRange?:(first:number,last:number)=>void}} opts
   */
  constructor(scroller, opts) {
    this.scroller = scroller;
    this.rowHeight = opts.rowHeight;
    this.createRow = opts.createRow;
    this.renderRow = opts.renderRow;
    this.onRange = opts.onRange || null;
    this.overscan = opts.overscan ?? 10;
    this.count = 0;
    this.slots = [];
    this.sizer = document.createElement("div");
    this.sizer.className = "vsizer";
    this.sizer.style.position = "relative";
    this.sizer.style.width = "100%";
    scroller.appendChild(this.sizer);
    this.frame = 0;
    scroller.addEventListener("scroll", () => this.schedule(false), { passive: true });
    if (window.ResizeObserver) new ResizeObserver(() => this.schedule(false)).observe(scroller);
  }

  setCount(n) {
    this.count = n;
    this.sizer.style.height = `${n * this.rowHeight}px`;
    this.render(true);
  }

  /** Re-render the rows in view (data changed). */
  refresh() { this.render(true); }

  schedule(force) {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(force); });
  }

  range() {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - this.overscan);
    const last = Math.min(this.count, Math.ceil((top + height) / this.rowHeight) + this.overscan);
    return [first, last];
  }

  render(force) {
    const [first, last] = this.range();
    const need = Math.max(1, Math.ceil((this.scroller.clientHeight || 600) / this.rowHeight) + 2 * this.overscan + 2);
    if (need !== this.slots.length) {
      for (const el of this.slots) el.remove();
      this.slots = [];
      for (let k = 0; k < need; k++) {
        const el = this.createRow();
        el.style.position = "absolute";
        el.style.left = "0";
        el.style.right = "0";
        el.style.height = `${this.rowHeight}px`;
        el._index = -1;
        this.sizer.appendChild(el);
        this.slots.push(el);
      }
      force = true;
    }
    const used = new Set();
    for (let i = first; i < last; i++) {
      const el = this.slots[i % this.slots.length];
      used.add(el);
      if (force || el._index !== i) {
        el._index = i;
        el.style.transform = `translateY(${i * this.rowHeight}px)`;
        el.hidden = false;
        this.renderRow(el, i);
      }
    }
    for (const el of this.slots) {
      if (!used.has(el)) { el.hidden = true; el._index = -1; }
    }
    if (this.onRange) this.onRange(first, last);
  }

  /** Scroll so that row ``i`` is in view (only when it is not). */
  scrollToIndex(i) {
    const top = i * this.rowHeight;
    const view = this.scroller.clientHeight;
    if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
    else if (top + this.rowHeight > this.scroller.scrollTop + view) this.scroller.scrollTop = top + this.rowHeight - view;
    this.render(false);
  }

  /** The row element showing index ``i``, if it is rendered. */
  rowAt(i) {
    const el = this.slots[i % this.slots.length];
    return el && el._index === i ? el : null;
  }
}

// MathJax settings for pymdownx.arithmatex's generic output (\( \) inline, \[ \] display) on the
// pages, and for the notebooks' markdown cells ($ and $$, rendered by mkdocs-jupyter as jp-MarkdownOutput).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex|jp-MarkdownOutput" },
};
if (typeof document$ !== "undefined") {
  document$.subscribe(() => { if (window.MathJax.typesetPromise) { MathJax.typesetPromise(); } });
}

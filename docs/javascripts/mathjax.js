// MathJax for the site's maths: pymdownx.arithmatex's output on the pages (\( \) inline, \[ \] display,
// inside .arithmatex elements) and the notebooks' markdown cells ($ and $$, inside mkdocs-jupyter's
// .jp-MarkdownOutput). Only those containers are typeset, so a dollar sign anywhere else (a shell
// variable in a guide, a code cell) stays text; MathJax's class filters cannot say this, because they
// apply to every nested element (a <p> inside a markdown cell would be skipped).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  startup: {
    typeset: false,
    pageReady: () => window.MathJax.startup.defaultPageReady().then(typesetMaths),
  },
};

function typesetMaths() {
  const containers = document.querySelectorAll(".arithmatex, .jp-MarkdownOutput");
  if (window.MathJax.typesetPromise && containers.length) {
    return window.MathJax.typesetPromise(Array.from(containers));
  }
  return Promise.resolve();
}

// Material's instant navigation swaps the page's content without reloading: typeset the new one.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => typesetMaths());
}

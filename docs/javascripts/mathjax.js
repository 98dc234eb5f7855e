// MathJax configuration for pymdownx.arithmatex (generic mode). The library itself is bundled
// in vendor/ (no CDN), so formulas render offline.
window.MathJax = {
  tex: {
    // \( \) and \[ \] from pymdownx.arithmatex; $ and $$ from the notebooks' markdown cells
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  // The whole page is searched (code and pre are skipped): arithmatex spans and the notebooks'
  // markdown cells, whose math sits in plain <p> elements. No page uses a literal $ in prose.
  options: {
    ignoreHtmlClass: "tex2jax_ignore",
    processHtmlClass: "tex2jax_process",
  },
  loader: {
    // the bundle contains everything the docs use; never reach out for extensions
    load: [],
  },
};

// Material's instant navigation swaps page content: typeset again (the first page is typeset by
// MathJax's own startup). SVG output has no font cache to clear.
document$.subscribe(() => {
  if (!window.MathJax || !window.MathJax.typesetPromise) return;
  if (MathJax.startup.output.clearCache) MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});

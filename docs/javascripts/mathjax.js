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
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown",
  },
  loader: {
    // the bundle contains everything the docs use; never reach out for extensions
    load: [],
  },
};

document$.subscribe(() => {
  if (!window.MathJax.startup || !window.MathJax.startup.output) return;
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});

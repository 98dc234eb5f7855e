// Replaces the MathJax 2 loader that nbconvert's template puts in every notebook page (it points
// to a CDN). Nothing to do: the site's bundled MathJax 3 (mathjax.js + vendor/) typesets them.

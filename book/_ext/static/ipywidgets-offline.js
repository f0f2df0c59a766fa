/* Offline glue for the ipywidgets HTML manager (@jupyter-widgets/html-manager 1.x, embed-amd.js).
 * Loaded through `nb_ipywidgets_js` in _config.yml on pages that hold widget state, after
 * RequireJS and before embed-amd.js; copied to _static/_vendor/ by _ext/offline_assets.py.
 */
(function () {
  "use strict";

  // 1. embed-amd.js loads its bundled Font Awesome fonts from the folder of its AMD module's URL,
  //    which RequireJS derives from the module id relative to the *page*
  //    ("<page dir>/@jupyter-widgets/html-manager/dist/"), a folder the book does not have. Map that
  //    id prefix to html-manager/ beside this file, where vendor_js.sh put the bundle and its fonts.
  //    (`__jupyter_widgets_assets_path__` is set too; the bundle reads it only after the fonts'
  //    URLs have been fixed, so it is not enough on its own.)
  var here = document.currentScript && document.currentScript.src;
  if (here) {
    var assets = new URL("html-manager/", here).href;
    if (window.require && window.require.config) {
      window.require.config({
        paths: { "@jupyter-widgets/html-manager/dist": assets.replace(/\/$/, "") }
      });
    }
    if (!window.__jupyter_widgets_assets_path__) window.__jupyter_widgets_assets_path__ = assets;
  }

  // 2. @jupyter-widgets/base typesets widget labels with the MathJax 2 API,
  //    `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`, whenever window.MathJax exists.
  //    The book loads MathJax 3, which has no `Hub`: without this the page throws a TypeError.
  function addHub() {
    var mj = window.MathJax;
    if (!mj || !mj.version || mj.Hub || String(mj.version).charAt(0) === "2") return;
    mj.Hub = {
      Queue: function () {
        var elements = [];
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          if (Array.isArray(job) && job[0] === "Typeset" && job[2]) elements.push(job[2]);
        }
        if (!elements.length || !mj.startup || !mj.startup.promise) return;
        mj.startup.promise
          .then(function () { return mj.typesetPromise ? mj.typesetPromise(elements) : null; })
          .catch(function (err) { console.warn("MathJax could not typeset a widget label:", err); });
      }
    };
  }
  addHub();
  document.addEventListener("DOMContentLoaded", addHub);
  window.addEventListener("load", addHub);
})();

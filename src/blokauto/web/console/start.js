/* Starts the console once every page registered: the key and anchor controls, the anchor, the router. */
(function () {
  "use strict";
  const C = window.Console, S = window.BlokautoSigning;

  document.getElementById("keyfile").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    C.problem("");
    try {
      C.setSigner(await S.loadKey(await f.text()));
      C.render();
    } catch (err) {
      C.setSigner(null);
      C.problem(`That key file cannot sign: ${err.message}`);
    }
    e.target.value = "";
  });
  document.getElementById("forget").addEventListener("click", () => { C.setSigner(null); C.render(); });
  document.getElementById("anchorfile").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    C.problem("");
    try {
      await C.loadAnchorFile(await f.text());
      C.render();
    } catch (err) {
      C.problem(`That trust anchor cannot be used: ${err.message}`);
    }
    e.target.value = "";
  });
  window.addEventListener("hashchange", () => {
    if (!location.hash.startsWith("#/")) return;  // not a route (an in-page anchor)
    C.render().then(() => document.getElementById("view").focus({ preventScroll: true }));
  });
  document.querySelector(".skip").addEventListener("click", (e) => {  // to the content, not to another page
    e.preventDefault();
    document.getElementById("view").focus();
  });

  C.setSigner(null);
  C.loadServedAnchor().catch((err) => {
    C.problem(`No trust anchor: ${err.message}`);
  }).finally(() => C.render());
})();

"""A journey as one self-contained HTML page (QEMU: none): the SVG inline, a little CSS,
and a script that shows, for the arrow a reader clicks, its trace line, where it is in
the trace, and the toynic and QEMU functions it maps to. Nothing is fetched from the
network; errors of the page's own script are written into the page (`#errors`), where a
test (or a reader) sees them.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

STYLE = """
body { margin: 0; font-family: 'DejaVu Sans', Verdana, Arial, sans-serif; color: #1d2430;
       background: #ffffff; }
header { padding: 10px 16px 4px; }
h1 { font-size: 18px; margin: 0 0 4px; }
p.hint { margin: 0; font-size: 13px; color: #5b6475; }
main { padding: 6px 16px 200px; overflow-x: auto; }
main svg .arrow { cursor: pointer; }
#details { position: fixed; left: 0; right: 0; bottom: 0; min-height: 96px;
           background: #f8f9fc; border-top: 2px solid #24406b; padding: 8px 16px;
           font-size: 13px; box-shadow: 0 -2px 8px rgba(0, 0, 0, 0.15); }
#details dl { display: grid; grid-template-columns: 9em 1fr; gap: 2px 12px; margin: 0; }
#details dt { font-weight: bold; color: #40506a; }
#details dd { margin: 0; font-family: 'DejaVu Sans Mono', monospace; white-space: pre-wrap; }
#errors { color: #c0392b; font-weight: bold; }
"""

SCRIPT = """
(function () {
  "use strict";
  var errors = document.getElementById("errors");
  window.addEventListener("error", function (event) {
    errors.textContent += "script error: " + event.message + "\\n";
  });
  var details = document.getElementById("details");
  var rows = [["trace line", "line"], ["where", "ref"], ["virtual time", "time"],
              ["toynic", "toynic"], ["QEMU", "qemu"], ["frame bytes", "hexdump"]];
  function show(arrow) {
    var old = document.querySelector(".arrow.selected");
    if (old) { old.classList.remove("selected"); }
    arrow.classList.add("selected");
    var list = document.createElement("dl");
    var desc = arrow.querySelector("desc");
    var values = {line: arrow.dataset.line, ref: arrow.dataset.ref, time: arrow.dataset.time,
                  toynic: arrow.dataset.toynic, qemu: arrow.dataset.qemu,
                  hexdump: desc ? desc.textContent : ""};
    rows.forEach(function (row) {
      if (!values[row[1]]) { return; }
      var term = document.createElement("dt");
      term.textContent = row[0];
      var value = document.createElement("dd");
      value.textContent = values[row[1]];
      list.appendChild(term);
      list.appendChild(value);
    });
    details.replaceChildren(list);
  }
  document.querySelectorAll("svg .arrow").forEach(function (arrow) {
    arrow.addEventListener("click", function () { show(arrow); });
  });
  // #arrow=N opens with arrow N selected: a link to one step (and a test's click)
  var wanted = /^#arrow=(\\d+)$/.exec(window.location.hash);
  var first = wanted && document.querySelector('svg .arrow[data-i="' + wanted[1] + '"]');
  if (first) { show(first); }
  document.body.dataset.ready = "yes";
})();
"""


def render(svg: str, title: str) -> str:
    """The page around an SVG document made by emu.tracetool.svg.render."""
    inline = svg.split("?>", 1)[1].lstrip() if svg.startswith("<?xml") else svg
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<header><h1>{escape(title)}</h1>",
        '<p class="hint">Click an arrow to see its trace line and the toynic and QEMU '
        "functions it maps to.</p>",
        '<pre id="errors"></pre></header>',
        f"<main>{inline}</main>",
        '<aside id="details">Click an arrow.</aside>',
        f"<script>{SCRIPT}</script>",
        "</body>",
        "</html>",
        ""])

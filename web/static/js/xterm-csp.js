// xterm.js under a strict CSP (style-src 'self', no 'unsafe-inline').
//
// xterm.js 6 draws its theme colours, row dimensions and scrollbar through <style> elements it
// creates and fills at run time. The page's CSP blocks those (the text is then drawn black on
// black, and every update logs a CSP violation). Styles set through the CSSOM are not subject
// to style-src, so this shim hands xterm an inert stand-in for each <style> it creates and
// applies the text as a constructed stylesheet (document.adoptedStyleSheets) instead.
//
// Call installStyleShim() once, before `new Terminal(...)`.

let installed = false;

function adopt(sheet) {
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}

function unadopt(sheet) {
  document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
}

/** An element that behaves like an empty <style> in the DOM but styles through `sheet`. */
function styleStandIn(create) {
  const sheet = new CSSStyleSheet();
  adopt(sheet);
  // <template> content is inert: appending it anywhere renders and runs nothing.
  const node = create("template");
  node.dataset.xtermStyle = "";
  let text = "";
  const setText = (value) => {
    text = value === null || value === undefined ? "" : String(value);
    try {
      sheet.replaceSync(text);
    } catch {
      // Malformed CSS from the library: keep the previous rules.
    }
  };
  Object.defineProperties(node, {
    textContent: { get: () => text, set: setText, configurable: true },
    innerText: { get: () => text, set: setText, configurable: true },
    innerHTML: { get: () => text, set: setText, configurable: true },
    sheet: { get: () => sheet, configurable: true },
  });
  const remove = node.remove.bind(node);
  node.remove = () => {
    unadopt(sheet);
    remove();
  };
  return node;
}

export function installStyleShim() {
  if (installed) return;
  if (typeof CSSStyleSheet !== "function" || !("adoptedStyleSheets" in document)) return;
  try {
    new CSSStyleSheet().replaceSync("");
  } catch {
    return; // no constructable stylesheets: leave xterm as it is
  }
  installed = true;
  const create = Document.prototype.createElement.bind(document);
  document.createElement = function createElement(tagName, options) {
    if (String(tagName).toLowerCase() === "style") return styleStandIn(create);
    return create(tagName, options);
  };
}

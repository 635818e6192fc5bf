// The page of `snnfast serve`: pick a query, POST /search, draw what comes back.
// Plain JavaScript, no libraries: everything it needs comes from this service.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;
let busy = false;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const svg = (tag, attrs = {}) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};

const int = (n) => Number(n).toLocaleString("en-US");

function si(value, unit) {
  const scales = [[1, ""], [1e-3, "m"], [1e-6, "µ"], [1e-9, "n"]];
  for (const [s, p] of scales) {
    if (Math.abs(value) >= s) return `${(value / s).toPrecision(4)} ${p}${unit}`;
  }
  return `${(value / 1e-12).toPrecision(4)} p${unit}`;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function setStatus(text) {
  $("status").textContent = text;
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function indexLabel(ix) {
  return ix.readout === "ann" ? "ANN" : `${ix.readout}, T = ${ix.timesteps}`;
}

async function init() {
  try {
    info = await getJSON("/info");
  } catch (err) {
    showError(`cannot read /info: ${err.message}`);
    return;
  }
  const m = info.model;
  const items = info.items ? `${int(info.items.count)} catalogue images` : "no catalogue images";
  $("model-line").textContent =
    `model ${m.name} (${m.model_id}), input ${m.input_shape.join(" × ")}; ${items}; ` +
    `indexes: ${info.indexes.map((ix) => `${indexLabel(ix)} (${int(ix.size)})`).join(", ")}` +
    (info.ann_index ? `; ANN index (${int(info.ann_index.size)})` : "");
  const lim = info.limits;
  $("limits-line").textContent =
    `${lim.formats.join(", ")}; up to ${(lim.max_upload_bytes / 1048576).toFixed(0)} MiB ` +
    `and ${(lim.max_pixels / 1e6).toFixed(0)} megapixels`;

  const select = $("index");
  info.indexes.forEach((ix, i) => select.append(el("option", { value: String(i) }, indexLabel(ix))));
  select.disabled = info.indexes.length < 2;
  $("k").max = String(lim.max_k);
  $("k").value = String(info.default_k);
  if (!info.ann_index) {
    $("ann").checked = false;
    $("ann").disabled = true;
  }
  if (!info.chip) {
    $("chip").checked = false;
    $("chip").disabled = true;
  }
  if (info.items) {
    $("catalogue-pick").hidden = false;
    $("item-id").min = String(info.items.first_id);
    showExamples();
  }
  setStatus("Ready: drop an image, choose a file, or click a catalogue item.");
}

function randomId() {
  const it = info.items;
  return it.first_id + Math.floor(Math.random() * it.count);
}

function showExamples() {
  const grid = $("example-grid");
  grid.replaceChildren();
  for (let i = 0; i < 12; i++) {
    const id = randomId();
    const img = el("img", { src: `/items/${id}`, alt: `item ${id}`, class: "pixels", loading: "lazy" });
    img.addEventListener("error", () => img.parentElement && img.parentElement.remove());
    grid.append(el("button", { class: "tile", type: "button", title: `item ${id}`, onclick: () => searchItem(id) }, img));
  }
  $("examples").hidden = false;
}

function formFor(extra) {
  const form = new FormData();
  for (const [k, v] of Object.entries(extra)) form.append(k, v);
  const ix = info.indexes[Number($("index").value) || 0];
  form.append("readout", ix.readout);
  form.append("T", String(ix.timesteps));
  form.append("k", $("k").value);
  form.append("ann", $("ann").checked ? "true" : "false");
  form.append("chip", $("chip").checked ? "true" : "false");
  return form;
}

async function runSearch(form, originalUrl, what) {
  if (busy) return;
  busy = true;
  showError("");
  setStatus(`Searching with ${what}…`);
  document.body.classList.add("busy");
  const started = performance.now();
  try {
    const result = await getJSON("/search", { method: "POST", body: form });
    render(result, originalUrl);
    setStatus(`${what}: ${result.snn.items.length} neighbours in ${(performance.now() - started).toFixed(0)} ms.`);
  } catch (err) {
    showError(err.message);
    setStatus("");
  } finally {
    busy = false;
    document.body.classList.remove("busy");
  }
}

function searchFile(file) {
  if (!file) return;
  const url = URL.createObjectURL(file);
  runSearch(formFor({ image: file }), url, file.name || "the image");
}

function searchItem(id) {
  $("item-id").value = String(id);
  runSearch(formFor({ id: String(id) }), `/items/${id}`, `catalogue item ${id}`);
}

function labelText(label, name) {
  if (label === null || label === undefined) return "unlabelled";
  return name || `label ${label}`;
}

function renderNeighbours(block, title, grid, result, queryLabel) {
  grid.replaceChildren();
  if (!result) {
    block.hidden = true;
    return;
  }
  title.textContent = `${result.readout === "ann" ? "ANN" : `SNN (${result.readout}, T = ${result.timesteps})`} neighbours`;
  for (const item of result.items) {
    const same = queryLabel !== null && queryLabel !== undefined && item.label === queryLabel;
    const img = el("img", { src: `/items/${item.id}`, alt: `item ${item.id}`, class: "pixels" });
    const tile = el(
      "button",
      { class: `tile item${same ? " same" : ""}`, type: "button", title: item.path || `item ${item.id}`, onclick: () => searchItem(item.id) },
      img,
      el("span", { class: "distance" }, `d = ${item.distance.toFixed(3)}`),
      el("span", { class: "label", title: item.label === null ? "" : `label ${item.label}` }, labelText(item.label, item.class_name)),
      el("span", { class: "id" }, `#${item.id}`),
    );
    grid.append(tile);
  }
  block.hidden = false;
}

function renderChart(chip) {
  const box = $("spike-chart");
  box.replaceChildren();
  const layers = chip.layers;
  const maxSpikes = Math.max(1, ...layers.map((l) => l.spikes));
  const rowH = 28, labelW = 70, barW = 260, valueW = 190;
  const width = labelW + barW + valueW, height = rowH * layers.length + 8;
  const chart = svg("svg", { width: String(width), height: String(height), viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "spikes per layer" });
  layers.forEach((layer, i) => {
    const y = 4 + i * rowH;
    const w = Math.max(1, (barW * layer.spikes) / maxSpikes);
    const name = svg("text", { x: String(labelW - 8), y: String(y + rowH / 2 + 4), "text-anchor": "end", class: "axis" });
    name.textContent = layer.name;
    const bar = svg("rect", { x: String(labelW), y: String(y + 4), width: w.toFixed(1), height: String(rowH - 8), class: "bar" });
    const tip = svg("title");
    tip.textContent = `${layer.name}: ${int(layer.spikes)} spikes from ${int(layer.neurons)} neurons; ${int(layer.synops)} synaptic events in`;
    bar.append(tip);
    const rate = layer.spikes / layer.neurons / Math.max(1, chip.steps);
    const value = svg("text", { x: String(labelW + w + 6), y: String(y + rowH / 2 + 4), class: "value" });
    value.textContent = `${int(layer.spikes)} (${rate.toFixed(3)} / neuron / step)`;
    chart.append(name, bar, value);
  });
  box.append(chart);
}

function renderChip(chip) {
  const block = $("chip-block");
  if (!chip) {
    block.hidden = true;
    return;
  }
  $("chip-title").textContent = `On the chip: ${chip.chip}, T = ${chip.timesteps}`;
  renderChart(chip);
  const rows = [
    ["time steps run", `${chip.steps} of ${chip.timesteps}`],
    ["cores / chips", `${chip.n_cores} / ${chip.n_chips}`],
    ["spikes", int(chip.spikes)],
    ["synaptic operations", int(chip.synops)],
    ["latency", si(chip.latency_s, "s")],
    ["dynamic energy", si(chip.dynamic_energy_j, "J")],
    ["static energy", si(chip.static_energy_j, "J")],
    ["total energy", si(chip.total_energy_j, "J")],
  ];
  const table = $("chip-table");
  table.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  block.hidden = false;
}

function render(result, originalUrl) {
  const q = result.query;
  $("query-original").src = originalUrl;
  $("query-seen").src = q.image;
  const facts = [
    ["query", q.source === "item" ? `catalogue item #${q.id}` : q.filename || "uploaded image"],
    ["label", q.label === null || q.label === undefined ? "unknown" : `${labelText(q.label, q.class_name)} (${q.label})`],
    ["SNN predicts", q.predicted_name ? `${q.predicted_name} (${q.predicted})` : `class ${q.predicted}`],
  ];
  $("query-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("query-card").hidden = false;
  $("legend").hidden = false;
  const known = q.label !== null && q.label !== undefined;
  const reference = known ? q.label : q.predicted;
  $("legend").textContent = `A green frame marks a neighbour of the query's class (${known ? "its label" : "as the SNN predicts it"}: ${labelText(reference, known ? q.class_name : q.predicted_name)}). Click a neighbour to search with it.`;
  renderNeighbours($("snn-block"), $("snn-title"), $("snn-results"), result.snn, reference);
  renderNeighbours($("ann-block"), $("ann-title"), $("ann-results"), result.ann, reference);
  renderChip(result.chip);
  const t = result.timing;
  $("timing").textContent =
    `server: ${t.total_ms.toFixed(1)} ms (read ${t.decode_ms.toFixed(1)}, embed ${t.embed_ms.toFixed(1)}, ` +
    `search ${t.search_ms.toFixed(1)}, chip estimate ${t.chip_ms.toFixed(1)})`;
}

function wire() {
  $("file").addEventListener("change", (e) => searchFile(e.target.files[0]));
  const drop = $("drop");
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const kind of ["dragleave", "drop"]) {
    drop.addEventListener(kind, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    searchFile(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData || {}).files || []][0];
    if (file) searchFile(file);
  });
  $("id-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("item-id").value;
    if (id !== "") searchItem(Number(id));
  });
  $("random-item").addEventListener("click", () => searchItem(randomId()));
}

document.addEventListener("DOMContentLoaded", () => {
  wire();
  init();
});

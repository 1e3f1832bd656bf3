// fabrec page, New scheme tab: a label project's photos, clicked points (saved as labelme JSON on
// the server after every change), background training with progress, preview and export.
"use strict";

const $ = id => document.getElementById(id);
const canvas = $("label-canvas");
const ctx = canvas.getContext("2d");
const S = {  // the tab's state: project, photo, points, view, undo stack, pointer
  project: null, photos: [], index: 0, img: null, points: [], current: 0,
  view: { s: 1, ox: 0, oy: 0 }, undo: [], pointer: null, poll: null,
};
const enc = encodeURIComponent;
const base = () => `/v1/projects/${enc(S.project.name)}`;

function say(text, error = false) {
  const m = $("project-message");
  m.textContent = text;
  m.classList.toggle("error", error);
}

async function refreshList(select) {
  const { projects } = await (await api("/v1/projects")).json();
  $("project-list").innerHTML = projects.map(p => `<option>${p}</option>`).join("");
  if (select) $("project-list").value = select;
}

async function openProject(name) {
  S.project = await (await api(`/v1/projects/${enc(name)}`)).json();
  S.photos = S.project.images;
  $("workspace").hidden = false;
  $("project-title").textContent = `${S.project.name}: ${S.project.points.length} points`;
  showRoles(S.project);
  $("steps").placeholder = `${S.project.suggested_steps} (auto)`;
  showTraining(S.project.train);
  if (S.project.train.state === "training" || S.project.train.state === "exporting") follow();
  renderStrip();
  await openPhoto(Math.min(S.index, Math.max(0, S.photos.length - 1)));
}

// mirror pairs (for flip augmentation and --flip) and the normaliser of the validation NME
const pairsText = pairs => pairs.map(p => p.join(" ")).join("\n");
const readPairs = text => text.split("\n").map(l => l.trim().split(/[\s,]+/).filter(Boolean)).filter(p => p.length);
const readNorm = text => text.trim().split(/[\s,]+/).filter(Boolean);

function showRoles(p) {
  const pairs = p.flip_pairs.length ? p.flip_pairs.map(q => q.join(" ↔ ")).join(", ") : "none (no flip)";
  $("roles-text").textContent = `mirror pairs: ${pairs}; validation NME normalised by ${p.normaliser}`;
  $("roles-pairs").value = pairsText(p.flip_pairs);
  $("roles-norm").value = (p.norm_points || []).join(" ");
}

function renderStrip() {
  const k = S.project.points.length;
  $("strip").innerHTML = "";
  S.photos.forEach((p, i) => {
    const b = document.createElement("button");
    b.textContent = `${p.file} ${p.labelled}/${k}`;
    b.className = (i === S.index ? "active " : "") + (p.labelled === k ? "done" : "");
    b.dataset.labelled = String(p.labelled);
    b.addEventListener("click", () => openPhoto(i));
    $("strip").append(b);
  });
  const complete = S.photos.filter(p => p.labelled === k).length;
  $("photo-pos").textContent = S.photos.length ?
    `photo ${S.index + 1} of ${S.photos.length} (${complete} fully labelled)` : "add photos to label";
}

async function openPhoto(i) {
  if (!S.photos.length) { S.img = null; renderPoints(); paint(); return; }
  S.index = (i + S.photos.length) % S.photos.length;
  const file = S.photos[S.index].file;
  const [blob, labels] = await Promise.all([
    api(`${base()}/images/${enc(file)}`).then(r => r.blob()),
    api(`${base()}/labels/${enc(file)}`).then(r => r.json()),
  ]);
  const img = new Image();
  await new Promise(ok => { img.onload = ok; img.src = URL.createObjectURL(blob); });
  S.img = img;
  S.points = labels.points;
  S.suggested = null;
  S.undo = [];
  if (S.points.every(q => q === null) && S.photos.some(p => p.labelled > 0)) await suggest(file);
  S.current = firstFree();
  fit();
  renderStrip();
  renderPoints();
  paint();
  canvas.dataset.photo = file;
}

async function suggest(file) {
  // every point suggested (hollow, orange): drag the wrong ones (a drag labels that point),
  // then accept the rest; nothing is saved until then
  try {
    const r = await (await api(`${base()}/suggest/${enc(file)}`)).json();
    S.suggested = r.points;
    if (r.points) say(`${file}: points suggested by ${r.source}: drag the wrong ones, then accept (A)`);
  } catch (e) {
    S.suggested = null;
  }
}

async function teach() {
  // the unlabelled photo that would teach most (an unusual pose, an unsure model), and why
  const r = await (await api(`${base()}/next`)).json();
  if (!r.order.length) { say("every photo has labels"); return; }
  const i = S.photos.findIndex(p => p.file === r.order[0].file);
  await openPhoto(i);
  say(`${r.order[0].file}: next because ${r.order[0].why}`);
  canvas.dataset.why = r.order[0].why;
}

async function accept() {
  if (!S.suggested) return;
  const sug = S.suggested;
  S.suggested = null;
  await change(() => {
    S.points = S.points.map((p, i) => p ?? (sug[i] ? [sug[i][0], sug[i][1]] : null));
    S.current = firstFree();
  });
}

const shown = i => S.points[i] ?? (S.suggested ? S.suggested[i] : null);  // a label, else a suggestion

function firstFree(from = 0) {
  const n = S.points.length;
  for (let k = 0; k < n; k++) if (S.points[(from + k) % n] === null) return (from + k) % n;
  return -1;
}

function fit() {
  if (!S.img) return;
  const s = Math.min(canvas.width / S.img.width, canvas.height / S.img.height);
  S.view = { s, ox: (canvas.width - S.img.width * s) / 2, oy: (canvas.height - S.img.height * s) / 2 };
}

const toCanvas = ([x, y]) => [(x + 0.5) * S.view.s + S.view.ox, (y + 0.5) * S.view.s + S.view.oy];
const toImage = (cx, cy) => [(cx - S.view.ox) / S.view.s - 0.5, (cy - S.view.oy) / S.view.s - 0.5];

function paint() {
  ctx.fillStyle = "#333";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!S.img) return;
  const { s, ox, oy } = S.view;
  ctx.drawImage(S.img, ox, oy, S.img.width * s, S.img.height * s);
  ctx.font = "11px system-ui, sans-serif";
  S.points.forEach((p, i) => {
    const q = shown(i);
    if (q === null) return;
    const [cx, cy] = toCanvas(q);
    ctx.beginPath();
    ctx.arc(cx, cy, 4, 0, 2 * Math.PI);
    if (p === null) {  // suggested, not yet a label: a hollow ring
      ctx.strokeStyle = i === S.current ? "#ffd400" : "#ff9f1a";
      ctx.lineWidth = 2;
      ctx.stroke();
      ctx.lineWidth = 1;
    } else {
      ctx.fillStyle = i === S.current ? "#ffd400" : "#19c37d";
      ctx.strokeStyle = "#000";
      ctx.fill();
      ctx.stroke();
    }
    ctx.fillStyle = "#fff";
    ctx.fillText(String(i + 1), cx + 5, cy - 5);
  });
  canvas.dataset.placed = String(S.points.filter(p => p !== null).length);
  canvas.dataset.suggested = String(S.suggested ? S.points.filter((p, i) => p === null && S.suggested[i]).length : 0);
  $("accept").hidden = !(S.suggested && S.points.some((p, i) => p === null && S.suggested[i]));
}

function renderPoints() {
  const list = $("point-list");
  list.innerHTML = "";
  (S.project ? S.project.points : []).forEach((name, i) => {
    const li = document.createElement("li");
    li.textContent = name + (S.points[i] ? " ✓" : "");
    li.className = i === S.current ? "current" : "";
    li.addEventListener("click", () => { S.current = i; renderPoints(); paint(); });
    list.append(li);
  });
}

const snapshot = () => JSON.stringify({ points: S.points, current: S.current });

async function change(mutate) {
  // every edit: undo snapshot, apply, save to the server, redraw
  S.undo.push(snapshot());
  mutate();
  await save();
}

async function save() {
  const file = S.photos[S.index].file;
  try {
    const r = await (await api(`${base()}/labels/${enc(file)}`, {
      method: "PUT", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ points: S.points }),
    })).json();
    S.photos[S.index].labelled = r.labelled;
    say(`${file}: saved, ${r.labelled} of ${S.points.length} points`);
  } catch (e) {
    say(`${file}: not saved: ${e.message}`, true);
  }
  renderStrip();
  renderPoints();
  paint();
}

function hit(cx, cy) {
  let best = -1, bestD = 8;
  S.points.forEach((p, i) => {
    const q = shown(i);
    if (q === null) return;
    const [px, py] = toCanvas(q);
    const d = Math.hypot(px - cx, py - cy);
    if (d < bestD) { best = i; bestD = d; }
  });
  return best;
}

function at(e) {
  const r = canvas.getBoundingClientRect();
  return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
}

canvas.addEventListener("mousedown", e => {
  if (!S.img) return;
  const [cx, cy] = at(e);
  const i = hit(cx, cy);
  S.pointer = { x: cx, y: cy, moved: false, drag: i, before: snapshot() };
  if (i >= 0) { S.current = i; renderPoints(); }
  canvas.focus();
});

canvas.addEventListener("mousemove", e => {
  if (!S.pointer) return;
  const [cx, cy] = at(e);
  const P = S.pointer;
  if (Math.hypot(cx - P.x, cy - P.y) > 4) P.moved = true;
  if (!P.moved) return;
  if (P.drag >= 0) {
    S.points[P.drag] = toImage(cx, cy);
  } else {
    S.view.ox += cx - P.x;
    S.view.oy += cy - P.y;
    P.x = cx;
    P.y = cy;
  }
  paint();
});

window.addEventListener("mouseup", async e => {
  const P = S.pointer;
  S.pointer = null;
  if (!P || !S.img) return;
  if (P.drag >= 0 && P.moved) {
    S.undo.push(P.before);
    await save();
  } else if (!P.moved && (P.drag < 0 || S.points[P.drag] === null) && S.current >= 0) {  // a click places the point (over a suggestion too)
    const [cx, cy] = at(e);
    const [x, y] = toImage(cx, cy);
    if (x < -0.5 || y < -0.5 || x > S.img.width - 0.5 || y > S.img.height - 0.5) return;
    const i = S.current;
    await change(() => {
      S.points[i] = [x, y];
      S.current = firstFree(i + 1);
    });
  }
});

canvas.addEventListener("wheel", e => {
  e.preventDefault();
  const [cx, cy] = at(e);
  const f = Math.pow(1.0015, -e.deltaY);
  S.view.ox = cx - (cx - S.view.ox) * f;
  S.view.oy = cy - (cy - S.view.oy) * f;
  S.view.s *= f;
  paint();
}, { passive: false });

async function undo() {
  if (!S.undo.length) return;
  ({ points: S.points, current: S.current } = JSON.parse(S.undo.pop()));  // the point the undone edit placed is next again
  await save();
}

document.addEventListener("keydown", e => {
  if ($("tab-scheme").hidden || $("workspace").hidden || ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName)) return;
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") { e.preventDefault(); undo(); }
  else if (key === "n" || e.key === "ArrowRight") openPhoto(S.index + 1);
  else if (key === "p" || e.key === "ArrowLeft") openPhoto(S.index - 1);
  else if (key === "f") { fit(); paint(); }
  else if (key === "a") accept();
  else if (key === "t") teach();
  else if ((e.key === "Delete" || e.key === "Backspace") && S.current >= 0 && S.points[S.current]) {
    e.preventDefault();
    const i = S.current;
    change(() => { S.points[i] = null; });
  }
});

function showTraining(t) {
  const st = $("train-status");
  st.dataset.state = t.state;
  const parts = [t.state];
  if (t.steps) parts.push(`step ${t.step} of ${t.steps}`);
  if (t.loss !== null && t.loss !== undefined) parts.push(`loss ${t.loss.toFixed(4)}`);
  if (t.val_nme !== null && t.val_nme !== undefined) {
    parts.push(`validation NME ${t.val_nme.toFixed(2)}% (of the ${S.project ? S.project.normaliser : "normaliser"})`);
  }
  if (t.seconds) parts.push(`${t.seconds.toFixed(0)} s`);
  if (t.message) parts.push(t.message);
  st.textContent = parts.join(", ");
  $("train-progress").max = Math.max(1, t.steps);
  $("train-progress").value = t.step;
  const busy = t.state === "training" || t.state === "exporting";
  $("train").disabled = busy;
  $("cancel").disabled = !busy;
  $("export-model").disabled = !t.model;
  if (t.state === "done" && S.reviewed !== t.seconds) { S.reviewed = t.seconds; showReview().catch(err => say(err.message, true)); }
}

async function showReview() {
  // after training: the labelled photos where the model disagrees most with the labels, worst first
  const r = await (await api(`${base()}/review`)).json();
  const box = $("review");
  box.innerHTML = "";
  const head = document.createElement("p");
  head.textContent = "Where the model and your labels disagree most (check these for mislabels):";
  box.append(head);
  r.review.forEach(item => {
    const b = document.createElement("button");
    b.textContent = item.error_pct === null ? `${item.file}: no face found` :
      `${item.file}: ${item.error_pct.toFixed(1)}%, worst ${item.worst_point}`;
    b.dataset.file = item.file;
    b.addEventListener("click", () => openPhoto(S.photos.findIndex(p => p.file === item.file)));
    box.append(b);
  });
  box.dataset.count = String(r.review.length);
}

function follow() {
  clearInterval(S.poll);
  const name = S.project.name;
  S.poll = setInterval(async () => {
    const t = await (await api(`/v1/projects/${enc(name)}/train`)).json();
    if (S.project && S.project.name === name) showTraining(t);
    if (t.state !== "training" && t.state !== "exporting") clearInterval(S.poll);
  }, 1000);
}

async function download(url, filename) {
  const blob = await (await api(url)).blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  a.click();
}

$("template").addEventListener("change", () => { $("own-roles").hidden = $("template").value !== "own"; });

$("new-project").addEventListener("submit", async e => {
  e.preventDefault();
  const name = $("project-name").value.trim();
  const own = $("template").value === "own";
  const doc = own ? { name, points: $("point-names").value.split(/[\n,]+/).map(s => s.trim()).filter(Boolean) }
                  : { name, template: $("template").value };
  if (own && $("new-pairs").value.trim()) doc.flip_pairs = readPairs($("new-pairs").value);
  if (own && $("new-norm").value.trim()) doc.norm_points = readNorm($("new-norm").value);
  try {
    await api("/v1/projects", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc) });
    await refreshList(name);
    S.index = 0;
    await openProject(name);
    say(`project ${name} created (${$("roles-text").textContent}): add photos, then click the points`);
  } catch (err) { say(err.message, true); }
});

$("roles").addEventListener("submit", async e => {
  e.preventDefault();
  const doc = { flip_pairs: readPairs($("roles-pairs").value), norm_points: readNorm($("roles-norm").value) };
  try {
    S.project = { ...S.project, ...(await (await api(`${base()}/scheme`, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc),
    })).json()) };
    showRoles(S.project);
    say("mirror pairs and normaliser saved");
  } catch (err) { say(err.message, true); }
});

$("open-project").addEventListener("submit", async e => {
  e.preventDefault();
  if (!$("project-list").value) return;
  S.index = 0;
  try { await openProject($("project-list").value); } catch (err) { say(err.message, true); }
});

$("project-files").addEventListener("change", async e => {
  const files = [...e.target.files];
  for (const f of files) {
    const body = new FormData();
    body.append("image", f, f.name);
    try { await api(`${base()}/images`, { method: "POST", body }); } catch (err) { say(`${f.name}: ${err.message}`, true); }
  }
  e.target.value = "";
  await openProject(S.project.name);
});

$("import-files").addEventListener("change", async e => {
  const f = e.target.files[0];
  if (!f) return;
  const body = new FormData();
  body.append("labels", f, f.name);
  try {
    const r = await (await api(`${base()}/import`, { method: "POST", body })).json();
    say(`${f.name}: ${r.imported} labelled photo(s) imported` + (r.problems.length ? `; ${r.problems.length} skipped: ${r.problems[0]}` : ""));
  } catch (err) { say(`${f.name}: ${err.message}`, true); }
  e.target.value = "";
  await openProject(S.project.name);
});

$("prev").addEventListener("click", () => openPhoto(S.index - 1));
$("next").addEventListener("click", () => openPhoto(S.index + 1));
$("undo").addEventListener("click", undo);
$("fit").addEventListener("click", () => { fit(); paint(); });
$("accept").addEventListener("click", accept);
$("teach").addEventListener("click", () => teach().catch(err => say(err.message, true)));

$("train").addEventListener("click", async () => {
  const steps = parseInt($("steps").value, 10);
  try {
    const t = await (await api(`${base()}/train`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Number.isFinite(steps) ? { steps } : {}),
    })).json();
    showTraining(t);
    follow();
  } catch (err) { say(err.message, true); }
});

$("cancel").addEventListener("click", async () => {
  try { showTraining(await (await api(`${base()}/train`, { method: "DELETE" })).json()); } catch (err) { say(err.message, true); }
});

$("preview-files").addEventListener("change", e => {
  [...e.target.files].forEach(f => send(f, `${base()}/preview`, $("preview-results")));
  e.target.value = "";
});
$("export-model").addEventListener("click", () => download(`${base()}/model`, `${S.project.name}.safetensors`));
$("export-labels").addEventListener("click", () => download(`${base()}/labels.zip`, `${S.project.name}-labels.zip`));

document.addEventListener("tab", e => { if (e.detail === "scheme") refreshList().catch(err => say(err.message, true)); });

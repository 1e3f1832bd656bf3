// fabrec page, Landmarks tab and what both tabs share: send photos to POST /v1/landmarks and
// draw the points (result schema fabrec-result/1).
"use strict";

const results = document.getElementById("results");

async function api(url, options = {}) {
  // fetch with the server's token (asked for once, on the first 401) and JSON errors as exceptions
  const withToken = () => {
    const token = sessionStorage.getItem("fabrec-token");
    const headers = Object.assign({}, options.headers || {});
    if (token) headers.Authorization = `Bearer ${token}`;
    return fetch(url, Object.assign({}, options, { headers }));
  };
  let resp = await withToken();
  if (resp.status === 401) {
    const token = prompt("This server needs its token:");
    if (token) { sessionStorage.setItem("fabrec-token", token); resp = await withToken(); }
  }
  if (!resp.ok) {
    let message = resp.statusText;
    try { message = (await resp.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return resp;
}

function colour(c) {  // confidence 0..1 -> red .. green
  const t = Math.max(0, Math.min(1, c));
  return `rgb(${Math.round(255 * (1 - t))}, ${Math.round(200 * t)}, 40)`;
}

function draw(canvas, img, rec) {
  const scale = Math.min(1, 460 / img.width);
  canvas.width = Math.round(img.width * scale);
  canvas.height = Math.round(img.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  for (const face of rec.faces) {
    const [x, y, w, h] = face.box;
    ctx.strokeStyle = "rgba(255, 200, 0, 0.8)";
    ctx.lineWidth = 1.5;
    ctx.strokeRect(x * scale, y * scale, w * scale, h * scale);
    const r = Math.max(1.5, Math.sqrt(w * h) * scale / 60);
    face.points.forEach(([px, py], i) => {
      ctx.fillStyle = colour(face.confidence[i]);
      ctx.beginPath();
      ctx.arc((px + 0.5) * scale, (py + 0.5) * scale, r, 0, 2 * Math.PI);
      ctx.fill();
    });
    if (face.head_pose && face.points.length === 68) drawAxes(ctx, face, scale, 0.5 * Math.sqrt(w * h) * scale);
  }
}

function drawAxes(ctx, face, scale, len) {
  // the head's axes from the nose tip: R = Rx(-pitch) Ry(yaw) Rz(roll), x red, y green, z blue (out of the face)
  const rad = Math.PI / 180, { yaw, pitch, roll } = face.head_pose;
  const [a, b, c] = [-pitch * rad, yaw * rad, roll * rad];
  const [ca, sa, cb, sb, cc, sc] = [Math.cos(a), Math.sin(a), Math.cos(b), Math.sin(b), Math.cos(c), Math.sin(c)];
  const row0 = [cb * cc, -cb * sc, sb], row1 = [sa * sb * cc + ca * sc, -sa * sb * sc + ca * cc, -sa * cb];
  const [ox, oy] = face.points[30].map(v => (v + 0.5) * scale);
  [["rgb(230, 40, 40)", 0, 1], ["rgb(40, 200, 40)", 1, 1], ["rgb(40, 90, 255)", 2, -1]].forEach(([col, k, sgn]) => {
    ctx.strokeStyle = col;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(ox, oy);
    ctx.lineTo(ox + sgn * len * row0[k], oy + sgn * len * row1[k]);
    ctx.stroke();
  });
}

const poseText = f => f.head_pose ?
  ` (yaw ${f.head_pose.yaw.toFixed(0)}°, pitch ${f.head_pose.pitch.toFixed(0)}°, roll ${f.head_pose.roll.toFixed(0)}°)` : "";

async function send(file, url = "/v1/landmarks", into = results) {
  // one card per photo: the photo with its points, the face count and the JSON to download
  const card = document.createElement("div");
  card.className = "card";
  card.innerHTML = `<div class="meta">${file.name}: finding faces…</div>`;
  into.prepend(card);
  const meta = card.querySelector(".meta");
  const body = new FormData();
  body.append("image", file, file.name);
  let rec;
  try {
    rec = await (await api(url, { method: "POST", body })).json();
  } catch (e) {
    meta.innerHTML = `<span class="error">${file.name}: ${e.message}</span>`;
    card.dataset.error = e.message;
    return;
  }
  const img = new Image();
  img.onload = () => {
    const canvas = document.createElement("canvas");
    card.prepend(canvas);
    draw(canvas, img, rec);
    const n = rec.faces.length;
    const json = URL.createObjectURL(new Blob([JSON.stringify(rec, null, 1)], { type: "application/json" }));
    meta.innerHTML = `${file.name}: <span class="faces">${n} face${n === 1 ? "" : "s"}</span>` +
      (n ? `, mean confidence ${rec.faces.map(f => f.mean_confidence.toFixed(2) + poseText(f)).join(", ")}` : "") +
      ` — <a download="${file.name.replace(/\.[^.]+$/, "")}.json" href="${json}">JSON</a>`;
    card.dataset.faces = String(n);
  };
  img.src = URL.createObjectURL(file);
}

api("/health").then(r => r.json()).then(h => {
  document.getElementById("model").textContent =
    `model ${h.model}, ${h.points} points (scheme ${h.scheme}), fabrec ${h.version}, API v${h.api}`;
  if (!h.projects) document.getElementById("scheme-tab").hidden = true;
});

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) {
      t.classList.toggle("active", t === tab);
      document.getElementById(`tab-${t.dataset.tab}`).hidden = t !== tab;
    }
    document.dispatchEvent(new CustomEvent("tab", { detail: tab.dataset.tab }));
  });
}

const drop = document.getElementById("drop");
document.getElementById("files").addEventListener("change", e => [...e.target.files].forEach(f => send(f)));
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {
  e.preventDefault();
  drop.classList.remove("over");
  [...e.dataTransfer.files].filter(f => f.type.startsWith("image/")).forEach(f => send(f));
});

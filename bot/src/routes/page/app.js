// Storytime's web page: photograph pages, upload them, follow the reading,
// then play the narration with the spoken word highlighted.
"use strict";

const TEXT = {
  en: {
    title: "Storytime", language: "Language",
    intro: "Take a photo of a book page, and Storytime reads it aloud, showing each word as it is spoken.",
    choose: "Take or choose photos of the pages", pagesLabel: "Pages, in reading order",
    speed: "Reading speed", read: "Read aloud", playback: "Playback speed",
    tapHint: "Tap a word to listen from there.", download: "Download the MP3",
    recent: "Your recent books", noRecent: "Books you listen to are kept here, in this browser only.",
    settings: "Settings", key: "API key (only if your Storytime asks for one)",
    up: "Move up", down: "Move down", remove: "Remove", page: "Page",
    uploading: "Sending the photos…", queued: "Waiting for its turn…", reading: "Reading the page…",
    narrating: "Recording the narration…", done: "Ready. Press play to listen.",
    noText: "No text was found on the page. Try a closer, sharper photo in good light.",
    failed: "Sorry, this did not work:", unauthorized: "Storytime asks for an API key: enter it under Settings.",
    network: "Storytime could not be reached. Check the connection and try again.",
    busy: "Storytime is busy; trying again…",
    tooLarge: "The photos are too large to send at once. Send fewer pages at a time, or smaller photos.",
    shrinking: "Making the photos smaller to send them…",
  },
  ko: {
    title: "스토리타임", language: "언어",
    intro: "책 페이지를 사진으로 찍으면 스토리타임이 소리 내어 읽어 주고, 읽는 단어를 표시해 줍니다.",
    choose: "페이지 사진 찍기 또는 고르기", pagesLabel: "읽을 순서대로 놓인 페이지",
    speed: "읽기 속도", read: "읽어 주기", playback: "재생 속도",
    tapHint: "단어를 누르면 그 부분부터 들을 수 있어요.", download: "MP3 내려받기",
    recent: "최근에 들은 책", noRecent: "들은 책은 이 브라우저에만 저장됩니다.",
    settings: "설정", key: "API 키 (스토리타임이 요구할 때만)",
    up: "위로", down: "아래로", remove: "빼기", page: "페이지",
    uploading: "사진을 보내는 중…", queued: "차례를 기다리는 중…", reading: "페이지를 읽는 중…",
    narrating: "낭독을 녹음하는 중…", done: "준비됐어요. 재생을 눌러 들어 보세요.",
    noText: "페이지에서 글자를 찾지 못했어요. 밝은 곳에서 더 가까이, 선명하게 찍어 보세요.",
    failed: "죄송해요, 실패했어요:", unauthorized: "API 키가 필요해요. 설정에 입력해 주세요.",
    network: "스토리타임에 연결할 수 없어요. 연결을 확인하고 다시 시도해 주세요.",
    busy: "스토리타임이 바빠요. 다시 시도하는 중…",
    tooLarge: "사진이 너무 커서 한 번에 보낼 수 없어요. 페이지를 나눠 보내거나 더 작은 사진을 보내 주세요.",
    shrinking: "보낼 수 있게 사진을 줄이는 중…",
  },
};

const $ = (id) => document.getElementById(id);
const store = {
  get(key, fallback) {
    try { return JSON.parse(localStorage.getItem("storytime." + key)) ?? fallback; } catch { return fallback; }
  },
  set(key, value) {
    try { localStorage.setItem("storytime." + key, JSON.stringify(value)); } catch { /* private mode */ }
  },
};

let lang = store.get("lang", (navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en");
let pages = [];   // File objects, in reading order
let words = [];   // {start, end, el}
let current = -1; // index of the highlighted word

const t = (key) => (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key;

function applyLanguage() {
  document.documentElement.lang = lang;
  $("lang").value = lang;
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  document.querySelectorAll("[data-t-label]").forEach((el) => el.setAttribute("aria-label", t(el.dataset.tLabel)));
  document.title = t("title");
  renderPages();
}

function status(message, progress) {
  $("status").textContent = message;
  const bar = $("progress");
  bar.hidden = progress === undefined;
  if (progress !== undefined) bar.value = progress;
}

function authHeaders() {
  const key = $("key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

// The chosen pages, with buttons to order them.
function renderPages() {
  const list = $("pages");
  list.replaceChildren();
  pages.forEach((file, i) => {
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.alt = "";
    img.src = URL.createObjectURL(file);
    img.onload = () => URL.revokeObjectURL(img.src);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${t("page")} ${i + 1}: ${file.name}`;
    li.append(img, name);
    const button = (label, disabled, action) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "button";
      b.textContent = label === "up" ? "↑" : label === "down" ? "↓" : "✕";
      b.setAttribute("aria-label", `${t(label)}: ${t("page")} ${i + 1}`);
      b.disabled = disabled;
      b.onclick = () => { action(); renderPages(); };
      li.append(b);
    };
    button("up", i === 0, () => { [pages[i - 1], pages[i]] = [pages[i], pages[i - 1]]; });
    button("down", i === pages.length - 1, () => { [pages[i + 1], pages[i]] = [pages[i], pages[i + 1]]; });
    button("remove", false, () => { pages.splice(i, 1); });
    list.append(li);
  });
  $("read").disabled = pages.length === 0;
}

// A single photo larger than this goes straight to storage (POST /uploads,
// then PUT to the link it answers): on AWS, API Gateway refuses requests
// over about 6 MB, which base64 makes about 4.4 MB of photo.
const DIRECT_MAX = 4 * 1024 * 1024;

// What the server takes: one photo, and a whole book's photos in one
// request (less behind API Gateway, which limits requests to about 6 MB).
const PHOTO_BYTES = Number(document.body.dataset.photoBytes) || Infinity;
const BOOK_BYTES = Number(document.body.dataset.bookBytes) || Infinity;
// A photo made smaller keeps this many pixels on its long side: plenty
// for reading a book page.
const SMALLER_SIDE = 2800;

async function upload() {
  const files = await fitted(pages);
  if (files.length === 1 && files[0].size > DIRECT_MAX) return uploadLarge(files[0]);
  const form = new FormData();
  files.forEach((file) => form.append("page", file, file.name));
  form.append("speed", $("speed").value);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/upload");
    Object.entries(authHeaders()).forEach(([k, v]) => xhr.setRequestHeader(k, v));
    xhr.setRequestHeader("X-Notification-Required", "false");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) status(t("uploading"), Math.round((e.loaded / e.total) * 100));
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 200) resolve(body);
      else reject(problem(xhr.status, body));
    };
    xhr.onerror = () => reject(new Error(t("network")));
    xhr.send(form);
  });
}

// The pages as they can be sent: a photo over the server's limit, or a
// book too large for one request, is made smaller, largest photo first.
// A single photo is sent whole through an upload link instead.
async function fitted(files) {
  const total = () => files.reduce((n, f) => n + f.size, 0);
  const room = files.length > 1 ? BOOK_BYTES : Infinity;
  const fits = () => files.every((f) => f.size <= PHOTO_BYTES) && total() <= room;
  if (fits()) return files;
  status(t("shrinking"));
  files = [...files];
  const largest = files.map((_, i) => i).sort((a, b) => files[b].size - files[a].size);
  for (const i of largest) {
    if (fits()) break;
    files[i] = await smaller(files[i]);
  }
  if (!fits()) throw new Error(t("tooLarge"));
  return files;
}

// The photo as a JPEG of at most SMALLER_SIDE pixels, turned upright; the
// photo itself when the browser cannot decode it (HEIC outside Safari) or
// the copy is no smaller.
async function smaller(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return file;
  }
  const scale = Math.min(1, SMALLER_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
  if (!blob || blob.size >= file.size) return file;
  return new File([blob], file.name.replace(/\.[^.]*$/, "") + ".jpg", { type: "image/jpeg" });
}

// Asks for an upload link, then sends the photo there with progress.
// Answers the upload's ID and Timestamp, which /retrieve follows to the job.
async function uploadLarge(file) {
  const headers = {
    ...authHeaders(),
    "X-Notification-Required": "false",
    "X-Speed": $("speed").value,
    "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(file.name)}`,
  };
  const response = await fetch("/uploads", { method: "POST", headers });
  const upload = await response.json().catch(() => ({}));
  if (response.status !== 201) throw problem(response.status, upload);
  await new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.Method || "PUT", upload.UploadURL);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) status(t("uploading"), Math.round((e.loaded / e.total) * 100));
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* storage answers XML or nothing */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(problem(xhr.status, body.error || body));
    };
    xhr.onerror = () => reject(new Error(t("network")));
    xhr.send(file);
  });
  return upload;
}

function problem(code, body) {
  if (code === 401) return new Error(t("unauthorized"));
  if (code === 413) return new Error(t("tooLarge"));
  return new Error(`${t("failed")} ${body.message || body.Message || code}`);
}

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

// Asks for the result until it is ready, showing what the job is doing.
async function follow(id, timestamp) {
  for (;;) {
    let response;
    try {
      response = await fetch("/retrieve", { headers: { ...authHeaders(), ETag: id, Timestamp: timestamp } });
    } catch {
      status(t("network"));
      await wait(3000);
      continue;
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 200) return body;
    if (response.status !== 503) throw problem(response.status, body);
    const stage = { queued: "queued", reading: "reading", narrating: "narrating" }[body.Status] || "busy";
    status(t(stage), stage === "narrating" ? 75 : stage === "reading" ? 40 : 15);
    const after = Number(response.headers.get("Retry-After")) || 2;
    await wait(Math.min(after, 2) * 1000);
  }
}

// Shows a finished book: the text as words to follow, and the audio.
function show(book) {
  const player = $("player");
  if (book.Status === "no_text" || !book.DownURL) {
    player.hidden = true;
    status(t("noText"));
    return;
  }
  remember(book);
  $("book-name").textContent = book.Name;
  const audio = $("audio");
  audio.src = book.DownURL;
  $("download").href = book.DownURL;
  audio.replaceChildren();
  if (book.CaptionsURL) {
    const track = document.createElement("track");
    track.kind = "captions";
    track.srclang = book.Language || "en";
    track.src = book.CaptionsURL;
    track.label = book.Language === "ko" ? "한국어" : "English";
    audio.append(track);
  }
  const text = $("text");
  text.lang = book.Language || "en";
  text.replaceChildren();
  words = [];
  current = -1;
  const timings = book.Words || [];
  // Text keeps its line breaks; its k-th run of non-space is Words[k].
  const pieces = (book.Text || "").split(/(\s+)/);
  let k = 0;
  for (const piece of pieces) {
    if (!piece) continue;
    if (/^\s+$/.test(piece)) {
      const breaks = (piece.match(/\n/g) || []).length;
      if (breaks) for (let i = 0; i < breaks; i++) text.append(document.createElement("br"));
      else text.append(" ");
      continue;
    }
    const span = document.createElement("span");
    span.textContent = piece;
    const timing = timings[k];
    if (timing) {
      span.dataset.index = String(words.length);
      words.push({ start: timing.StartMs / 1000, end: timing.EndMs / 1000, el: span });
    }
    text.append(span);
    k++;
  }
  player.hidden = false;
  status(t("done"));
  audio.playbackRate = Number($("rate").value);
}

// The word being spoken at the audio's time: the last one started.
function wordAt(time) {
  let lo = 0, hi = words.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (words[mid].start <= time) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

function highlight() {
  const audio = $("audio");
  const i = wordAt(audio.currentTime);
  if (i === current) return;
  if (current >= 0 && words[current]) words[current].el.removeAttribute("aria-current");
  current = i;
  if (i >= 0) {
    const el = words[i].el;
    el.setAttribute("aria-current", "true");
    const box = el.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) el.scrollIntoView({ block: "center", behavior: "smooth" });
  }
}

function follower() {
  highlight();
  if (!$("audio").paused) requestAnimationFrame(follower);
}

function remember(book) {
  const recent = store.get("recent", []).filter((b) => b.id !== book.ID);
  recent.unshift({ id: book.ID, timestamp: book.Timestamp, name: book.Name });
  store.set("recent", recent.slice(0, 20));
  renderRecent();
}

function renderRecent() {
  const recent = store.get("recent", []);
  const list = $("recent");
  list.replaceChildren();
  $("no-recent").hidden = recent.length > 0;
  for (const b of recent) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = b.name;
    button.onclick = () => openBook(b.id, b.timestamp);
    li.append(button);
    list.append(li);
  }
}

async function openBook(id, timestamp) {
  try {
    show(await follow(id, timestamp));
  } catch (e) {
    status(e.message);
  }
}

function start() {
  $("key").value = store.get("key", "");
  $("key").addEventListener("change", () => store.set("key", $("key").value.trim()));
  $("lang").addEventListener("change", () => { lang = $("lang").value; store.set("lang", lang); applyLanguage(); });
  $("photos").addEventListener("change", (e) => {
    pages.push(...e.target.files);
    e.target.value = "";
    renderPages();
  });
  $("upload").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!pages.length) return;
    $("read").disabled = true;
    try {
      status(t("uploading"), 0);
      const job = await upload();
      pages = [];
      renderPages();
      show(await follow(job.ID, job.Timestamp));
    } catch (err) {
      status(err.message);
    } finally {
      $("progress").hidden = true;
      $("read").disabled = pages.length === 0;
    }
  });
  const audio = $("audio");
  audio.addEventListener("play", () => requestAnimationFrame(follower));
  audio.addEventListener("seeked", highlight);
  audio.addEventListener("timeupdate", highlight);
  $("rate").addEventListener("change", () => { audio.playbackRate = Number($("rate").value); });
  $("text").addEventListener("click", (e) => {
    const i = e.target.dataset && e.target.dataset.index;
    if (i === undefined) return;
    audio.currentTime = words[Number(i)].start;
    highlight();
    audio.play().catch(() => {});
  });
  applyLanguage();
  renderRecent();
}

start();

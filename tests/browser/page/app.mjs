// A frontend's first minutes against the gateway, from another origin: register, sign in, add
// favorites with postgrest-js, list them with their titles embedded, sign out, and see the old
// token refused. Every step writes its outcome into the DOM (<li id="step-NAME" data-state="ok|error|
// skipped" data-detail="...">); #done appears at the end, whatever happened, so a test can wait for it.
import { PostgrestClient } from "./vendor/postgrest-js.mjs";

const params = new URLSearchParams(location.search);
const api = params.get("api");
const animeIds = (params.get("anime") || "").split(",").filter(Boolean);
const password = "correct horse battery staple";
const email = `browser-${crypto.randomUUID().slice(0, 12)}@example.test`;
const STEPS = ["register", "login", "add-favorites", "list-favorites", "logout", "after-logout"];

document.getElementById("origin").textContent = location.origin;
document.getElementById("api").textContent = api;
document.getElementById("email").textContent = email;
const items = Object.fromEntries(STEPS.map((name) => {
  const li = document.createElement("li");
  li.id = `step-${name}`;
  li.dataset.state = "pending";
  li.textContent = `${name}: pending`;
  document.getElementById("steps").append(li);
  return [name, li];
}));

function show(name, state, detail = "") {
  items[name].dataset.state = state;
  items[name].dataset.detail = detail;
  items[name].textContent = detail ? `${name}: ${state} (${detail})` : `${name}: ${state}`;
}

// fetch() rejects on a network or CORS failure (TypeError: Failed to fetch); a refused request
// is an HTTP status; both end the run with their message on the page
async function auth(path, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${api}${path}`, { method: "POST", headers, body: JSON.stringify(body) })
    .catch((error) => { throw new Error(`network or CORS refusal (${error.message})`); });
  const text = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function rest(token) {
  return new PostgrestClient(`${api}/rest`, { headers: { Authorization: `Bearer ${token}` } });
}

function failed(result) {  // postgrest-js answers { data, error, status } and never throws
  return `HTTP ${result.status} ${result.error.code ?? ""} ${result.error.message}`.replace(/ +/g, " ");
}

async function run() {
  const registered = await auth("/auth/register", { email, password });
  if (!registered.access_token) throw new Error("no access_token in the TokenPair");
  show("register", "ok");

  const pair = await auth("/auth/login", { email, password });
  show("login", "ok");
  const client = rest(pair.access_token);

  const added = await client.from("favorites").insert(animeIds.map((id) => ({ anime_id: id })));
  if (added.error) throw new Error(failed(added));
  show("add-favorites", "ok", `HTTP ${added.status}`);

  const listed = await client.from("favorites").select("anime_id, anime(id,title)").order("anime_id");
  if (listed.error) throw new Error(failed(listed));
  const titles = listed.data.map((row) => row.anime.title).sort();
  for (const title of titles) {
    const li = document.createElement("li");
    li.className = "favorite";
    li.textContent = title;
    document.getElementById("favorites").append(li);
  }
  show("list-favorites", "ok", `${titles.length}`);

  await auth("/auth/logout", { scope: "local" }, pair.access_token);
  show("logout", "ok");

  // the session is gone, so its access token stops working on the next request (contract §3)
  const after = await client.from("favorites").select("anime_id");
  if (!after.error) throw new Error(`HTTP ${after.status}: the signed-out token still works`);
  show("after-logout", "ok", `HTTP ${after.status}`);
}

const current = () => STEPS.find((name) => items[name].dataset.state === "pending");
try {
  await run();
} catch (error) {
  show(current(), "error", String(error));
} finally {
  for (const name of STEPS) if (items[name].dataset.state === "pending") show(name, "skipped");
  const done = document.createElement("p");
  done.id = "done";
  done.textContent = "done";
  document.body.append(done);
}

// The account page: API keys (create, shown once; revoke) and, for an admin, the people.

import { api } from "./api.js";
import { confirmDialog, showError, toast } from "./toast.js";

const $ = (id) => document.getElementById(id);
const isAdmin = $("account").dataset.admin === "true";
const when = (iso) => (iso ? new Date(iso).toLocaleDateString() : "never");

function cells(tr, values) {
  for (const v of values) {
    const td = document.createElement("td");
    if (v instanceof Node) td.append(v);
    else td.textContent = v;
    tr.append(td);
  }
  return tr;
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "link danger-text";
  b.textContent = text;
  b.addEventListener("click", () => onClick().catch(showError));
  return b;
}

async function loadKeys() {
  const keys = await api("/api/v1/keys");
  $("key-rows").replaceChildren(
    ...keys.map((k) => {
      const action = k.revoked_at
        ? "revoked"
        : button("Revoke", async () => {
            if (!(await confirmDialog(`Revoke the key “${k.name}”? Scripts using it stop working.`, { confirm: "Revoke" }))) return;
            await api(`/api/v1/keys/${k.id}`, { method: "DELETE" });
            await loadKeys();
          });
      const tr = cells(document.createElement("tr"), [k.name, `${k.prefix}…`, when(k.last_used_at), action]);
      tr.querySelector("td:nth-child(3)").className = "hide-narrow";
      return tr;
    }),
  );
}

async function loadUsers() {
  const users = await api("/api/v1/users");
  $("user-rows").replaceChildren(
    ...users.map((u) =>
      cells(document.createElement("tr"), [
        u.username,
        u.is_admin ? "admin" : "member",
        button("Remove", async () => {
          if (!(await confirmDialog(`Remove ${u.username}? They can no longer log in.`, { confirm: "Remove" }))) return;
          await api(`/api/v1/users/${encodeURIComponent(u.username)}`, { method: "DELETE" });
          await loadUsers();
        }),
      ]),
    ),
  );
}

function onSubmit(form, fn) {
  form?.addEventListener("submit", (e) => {
    e.preventDefault();
    fn(new FormData(form)).then(() => form.reset(), showError);
  });
}

onSubmit($("new-key"), async (data) => {
  const key = await api("/api/v1/keys", { method: "POST", body: { name: data.get("name").trim() } });
  const p = $("new-token");
  p.hidden = false;
  p.textContent = `New key “${key.name}”: ${key.token} — copy it now; it is not shown again.`;
  await loadKeys();
});

onSubmit($("new-user"), async (data) => {
  const body = { username: data.get("username").trim(), password: data.get("password"), is_admin: data.get("is_admin") === "on" };
  await api("/api/v1/users", { method: "POST", body });
  toast(`Added ${body.username}.`, "ok");
  await loadUsers();
});

loadKeys().catch(showError);
if (isAdmin) loadUsers().catch(showError);
document.body.dataset.ready = "true";

// Messages in the page: toasts for results and errors, a confirmation dialog, and a last-resort
// handler so that no failure goes unnoticed (an uncaught error or rejected promise shows a toast).

const region = () => document.getElementById("toasts");

/**
 * Show `message`. Errors stay until dismissed; other kinds fade after a few seconds.
 * kind: "error" | "ok" | "info". Returns the toast element.
 */
export function toast(message, kind = "info", { timeout = 5000, link, key = message } = {}) {
  const same = [...(region()?.children ?? [])].find((t) => t.dataset.key === key);
  if (same) {
    same.classList.remove("again");
    requestAnimationFrame(() => same.classList.add("again")); // one problem, one toast
    return same;
  }
  const box = document.createElement("div");
  box.dataset.key = key;
  box.className = `toast ${kind}`;
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  const text = document.createElement("p");
  text.textContent = message;
  box.append(text);
  if (link) {
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    box.append(a);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "icon";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "✕";
  close.addEventListener("click", () => box.remove());
  box.append(close);
  region()?.append(box);
  if (kind !== "error") setTimeout(() => box.remove(), timeout);
  return box;
}

/** Show an error (an ApiError or anything thrown) as a readable toast. */
export function showError(err, prefix = "") {
  if (err?.name === "AbortError") return;
  const message = err?.message || String(err);
  const link = err?.status === 401 ? { href: "/login", text: "Log in" } : undefined;
  console.error(err);
  toast(prefix ? `${prefix}: ${message}` : message, "error", { link, key: message });
}

/** Ask a yes/no question in a modal dialog; resolves true when the person confirms. */
export function confirmDialog(question, { confirm = "Delete", danger = true } = {}) {
  const dialog = document.createElement("dialog");
  dialog.className = "confirm";
  const form = document.createElement("form");
  form.method = "dialog";
  const p = document.createElement("p");
  p.textContent = question;
  const row = document.createElement("div");
  row.className = "row end";
  const no = document.createElement("button");
  no.value = "no";
  no.className = "secondary";
  no.textContent = "Cancel";
  const yes = document.createElement("button");
  yes.value = "yes";
  yes.className = danger ? "danger" : "";
  yes.textContent = confirm;
  row.append(no, yes);
  form.append(p, row);
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  no.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
  });
}

window.addEventListener("unhandledrejection", (e) => showError(e.reason));
window.addEventListener("error", (e) => showError(e.error ?? e.message));

// The account menu closes when a click lands outside it.
document.addEventListener("click", (e) => {
  const menu = document.querySelector(".account-menu[open]");
  if (menu && !menu.contains(e.target)) menu.open = false;
});

// The data tab's first slice: newest images as lazy-loaded thumbnails with their tags.
const grid = document.getElementById("grid");

async function loadPage(cursor) {
  const url = new URL("/api/v1/images", location.origin);
  url.searchParams.set("limit", "100");
  if (cursor) url.searchParams.set("cursor", cursor);
  const res = await fetch(url);
  if (!res.ok) {
    grid.textContent = (await res.json()).detail;
    return;
  }
  const page = await res.json();
  for (const img of page.items) {
    const fig = document.createElement("figure");
    const pic = document.createElement("img");
    pic.loading = "lazy";
    pic.src = img.thumbnail_url;
    pic.alt = img.original_name;
    const cap = document.createElement("figcaption");
    cap.textContent = img.tags.join(", ") || "untagged";
    fig.append(pic, cap);
    grid.append(fig);
  }
}

loadPage(null);

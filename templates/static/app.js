// fedserver's own few lines of progressive enhancement (no library: three small jobs do not need
// one, and nothing here has to be kept up to date with someone else's releases). Every page works
// without this file: forms post and redirect back to the post's anchor, times read in UTC.
//  1. Forms marked data-swap="ID" (like, boost, vote, follow) post in the background; the element
//     ID is replaced by the same element of the page the server answers with, so the page neither
//     reloads nor scrolls.
//  2. <time datetime> elements are redrawn in the viewer's own time zone, and kept fresh.
//  3. On home, a quiet "N new posts" link appears when posts arrive (polling /home/new).
"use strict";

(function () {
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const exact = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});

  function relative(date, now) {
    const ago = (now - date) / 1000;
    if (ago < 60) return "now";
    if (ago < 3600) return Math.floor(ago / 60) + " min";
    if (ago < 86400) return Math.floor(ago / 3600) + " h";
    if (ago < 7 * 86400) return Math.floor(ago / 86400) + " d";
    const day = MONTHS[date.getMonth()] + " " + date.getDate();
    return date.getFullYear() === new Date(now).getFullYear() ? day : day + ", " + date.getFullYear();
  }

  function redrawTimes(root) {
    const now = Date.now();
    for (const time of root.querySelectorAll("time[datetime]")) {
      const date = new Date(time.getAttribute("datetime"));
      if (isNaN(date)) continue;
      time.title = exact.format(date);
      // Only the short times of post cards are relative; other times keep their words.
      if (time.closest(".when")) time.textContent = relative(date, now);
    }
  }

  async function swap(form, submitter) {
    const target = document.getElementById(form.dataset.swap);
    const body = new FormData(form);
    if (submitter && submitter.name) body.append(submitter.name, submitter.value);
    const focusClass = submitter ? [...submitter.classList].find((c) => c !== "secondary") : null;
    form.setAttribute("aria-busy", "true");
    const response = await fetch(form.action, {method: "POST", body: body, credentials: "same-origin"});
    if (!response.ok && response.status !== 404) throw new Error("HTTP " + response.status);
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById(form.dataset.swap);
    const flash = page.querySelector("main .flash, main .error");
    if (!fresh) throw new Error("no " + form.dataset.swap + " in the answer");
    const replacement = document.importNode(fresh, true);
    if (flash) {
      const note = document.importNode(flash, true);
      note.setAttribute("role", "status");
      replacement.append(note);
    }
    target.replaceWith(replacement);
    redrawTimes(replacement);
    const again = (focusClass && replacement.querySelector("button." + focusClass)) ||
                  replacement.querySelector("form[data-swap] button");
    if (again) again.focus({preventScroll: true});
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.swap || !document.getElementById(form.dataset.swap)) {
      return;
    }
    event.preventDefault();
    swap(form, event.submitter).catch(() => {
      // Whatever went wrong, the plain form still works: send it the ordinary way.
      form.removeAttribute("data-swap");
      HTMLFormElement.prototype.submit.call(form);
    });
  });

  function watchHome(notice) {
    let busy = false;
    async function check() {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const url = notice.dataset.poll + "?since=" + encodeURIComponent(notice.dataset.since);
        const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
        if (!response.ok) return;
        const news = await response.json();
        if (news.count > 0) {
          const link = document.createElement("a");
          link.href = "/home";
          link.textContent = (news.more ? news.count + "+" : news.count) + " new post" + (news.count === 1 ? "" : "s");
          notice.replaceChildren(link);
        }
      } catch (error) {
        // Offline or the server restarting: ask again next time.
      } finally {
        busy = false;
      }
    }
    setInterval(check, 30000);
    window.addEventListener("focus", check);
    document.addEventListener("visibilitychange", check);
  }

  function start() {
    redrawTimes(document);
    setInterval(() => redrawTimes(document), 60000);
    const notice = document.getElementById("new-posts");
    if (notice && notice.dataset.poll) watchHome(notice);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

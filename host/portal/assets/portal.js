// Portico's portal: the little the server cannot do alone. Every page works without it, save
// the live parts: the run log stream, the wizard's steps, the hub's instant filter, and the
// admin forms that call the JSON API.
(function () {
  "use strict";
  const csrf = () => document.body.dataset.csrf || "";

  // The hub: filter cards as the user types (the form still submits for a server search).
  function hubFilter() {
    const input = document.querySelector("[data-filter]");
    if (!input) return;
    input.addEventListener("input", () => {
      const q = input.value.trim().toLowerCase();
      document.querySelectorAll(input.dataset.filter).forEach((card) => {
        card.hidden = q !== "" && !card.dataset.text.includes(q);
      });
    });
  }

  // The action form: a picker's search box must not re-render the fields (its own request
  // refreshes its choices), and a wizard shows one step at a time.
  let currentStep = 0;
  function actionForm() {
    const form = document.getElementById("action-form");
    if (!form) return;
    form.addEventListener("change", (e) => {
      if (e.target.classList.contains("picker-search")) e.stopPropagation();
    }, true);
    const back = form.querySelector(".wizard-back");
    const next = form.querySelector(".wizard-next");
    const submit = form.querySelector("#submit");
    const steps = () => Array.from(form.querySelectorAll("fieldset.step")).filter((s) => !s.hasAttribute("data-skip"));
    function show() {
      const all = steps();
      if (all.length < 2) {
        all.forEach((s) => (s.hidden = false));
        back.hidden = next.hidden = true;
        submit.hidden = false;
        return;
      }
      const errored = all.findIndex((s) => s.querySelector(".has-error"));
      if (errored >= 0 && form.dataset.jumped !== "1") {
        currentStep = errored;
        form.dataset.jumped = "1";
      }
      currentStep = Math.min(currentStep, all.length - 1);
      all.forEach((s, i) => (s.hidden = i !== currentStep));
      back.hidden = currentStep === 0;
      next.hidden = currentStep === all.length - 1;
      submit.hidden = currentStep !== all.length - 1;
    }
    back.addEventListener("click", () => { currentStep -= 1; show(); });
    next.addEventListener("click", () => {
      currentStep += 1;
      show();
      const first = steps()[currentStep].querySelector("input, select, textarea");
      if (first) first.focus();
    });
    // A re-render answers the values sent with its request; what the user typed meanwhile is
    // in the field that has focus (any other change sends a newer request, which replaces this
    // one): keep it.
    let editing = null;
    document.body.addEventListener("htmx:beforeSwap", () => {
      const el = document.activeElement;
      editing = el && el.id && form.contains(el) ? { id: el.id, value: el.value, checked: el.checked, start: el.selectionStart, end: el.selectionEnd } : null;
    });
    document.body.addEventListener("htmx:afterSwap", () => {
      if (editing) {
        const el = document.getElementById(editing.id);
        if (el && el.type !== "select-multiple") {
          if (el.type === "checkbox") el.checked = editing.checked;
          else el.value = editing.value;
          el.focus();
          try { if (editing.start !== null) el.setSelectionRange(editing.start, editing.end); } catch (_) {}
        }
      }
      show();
    });
    show();
  }

  // The run page: live log over SSE; when the stream is buffered (no heartbeat arrives), the
  // page polls instead. The stream resumes after the last line shown (Last-Event-ID).
  function runPage() {
    const run = document.getElementById("run");
    if (!run || run.dataset.final === "true") return;
    const id = run.dataset.run;
    const log = document.getElementById("log");
    let lastSeq = Number(run.dataset.lastSeq || 0);
    let pending = [];
    let scheduled = false;
    function flush() {
      scheduled = false;
      if (!pending.length) return;
      const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      const frag = document.createDocumentFragment();
      for (const l of pending) {
        const div = document.createElement("div");
        div.className = "line " + String(l.level || "").toLowerCase();
        div.dataset.seq = l.seq;
        const t = document.createElement("time");
        t.textContent = String(l.at || "").slice(11, 23);
        const lvl = document.createElement("span");
        lvl.className = "lvl";
        lvl.textContent = l.level;
        div.append(t, " ", lvl, " ", String(l.message));
        frag.append(div);
      }
      pending = [];
      log.append(frag);
      if (stick) log.scrollTop = log.scrollHeight;
    }
    function addLine(l) {
      if (l.seq <= lastSeq) return;
      lastSeq = l.seq;
      pending.push(l);
      if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
    }
    function setStatus(s) {
      if (s.status) document.querySelectorAll("[data-status]").forEach((b) => (b.textContent = s.status));
      const p = s.progress;
      if (p && p.percent !== undefined && p.percent !== null) document.getElementById("progress").value = p.percent;
      if (p && p.label) document.getElementById("progress-label").textContent = p.label;
    }
    let leaving = false;
    window.addEventListener("beforeunload", () => { leaving = true; });
    function ended() {
      flush();
      // The server renders the outcome (summary, links, affected entities), unless the user
      // is already on the way elsewhere.
      setTimeout(() => { if (!leaving) location.reload(); }, 300);
    }
    let polling = false;
    function poll() {
      polling = true;
      document.getElementById("live").textContent = "live (polling)";
      fetch(`/runs/${id}/poll?after=${lastSeq}`, { credentials: "same-origin" })
        .then((r) => r.json())
        .then((body) => {
          body.logs.forEach(addLine);
          setStatus(body.run);
          if (["SUCCESS", "FAILURE", "CANCELLED", "DECLINED"].includes(body.run.status)) ended();
          else setTimeout(poll, 1000);
        })
        .catch(() => setTimeout(poll, 3000));
    }
    if (!window.EventSource) { poll(); return; }
    const source = new EventSource(`/runs/${id}/events?after=${lastSeq}`);
    let heard = false;
    const fallback = setTimeout(() => { if (!heard) { source.close(); poll(); } }, 4000);
    source.addEventListener("ping", () => { heard = true; });
    source.addEventListener("log", (e) => { heard = true; addLine(JSON.parse(e.data)); });
    source.addEventListener("status", (e) => { heard = true; setStatus(JSON.parse(e.data)); });
    source.addEventListener("end", (e) => {
      heard = true;
      clearTimeout(fallback);
      source.close();
      setStatus(JSON.parse(e.data));
      ended();
    });
    source.onerror = () => {
      // EventSource reconnects by itself (with Last-Event-ID); a page that never heard from
      // the stream polls instead.
      if (!heard && !polling) { clearTimeout(fallback); source.close(); poll(); }
    };
  }

  // Admin forms: JSON to the API with the session's CSRF header; errors by path.
  function apiForms() {
    document.querySelectorAll("form.api-form").forEach((form) => {
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const out = form.querySelector(".api-result");
        if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
        let url = form.dataset.url;
        const headers = { "x-csrf-token": csrf() };
        let body;
        try {
          if (form.dataset.upload !== undefined) {
            url = url.replace("{name}", encodeURIComponent(form.elements.name.value));
            body = form.elements.file.files[0];
            headers["content-type"] = "application/wasm";
          } else if (form.dataset.json) {
            body = form.elements[form.dataset.json].value;
            JSON.parse(body);
            headers["content-type"] = "application/json";
          } else if (form.dataset.method !== "DELETE") {
            const data = {};
            for (const el of form.elements) {
              if (!el.name || el.value === "") continue;
              data[el.name] = el.dataset.list !== undefined ? el.value.split(",").map((s) => s.trim()).filter(Boolean) : el.value;
            }
            body = JSON.stringify(data);
            headers["content-type"] = "application/json";
          }
        } catch (err) {
          out.textContent = "Not valid JSON: " + err.message;
          out.className = "api-result error";
          return;
        }
        const response = await fetch(url, { method: form.dataset.method, headers, body, credentials: "same-origin" });
        const answer = await response.json().catch(() => ({}));
        if (response.ok) {
          const shown = form.dataset.show && form.dataset.show.split(".").reduce((v, k) => (v ? v[k] : undefined), answer);
          if (typeof shown === "string") {
            out.className = "api-result ok";
            out.textContent = "Copy it now, it is shown once: " + shown;
            return;
          }
          if (form.dataset.reload !== undefined) { location.reload(); return; }
          out.className = "api-result ok";
          out.textContent = "Saved.";
          return;
        }
        const details = (answer.details || []).map((d) => `${d.path}: ${d.message}`);
        out.className = "api-result error";
        out.textContent = [answer.message || response.statusText, ...details].join("\n");
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    hubFilter();
    actionForm();
    runPage();
    apiForms();
  });
})();

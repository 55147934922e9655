// The classroom in the page: the role (teacher, viewer, student, local) and what it may touch,
// the class channel (/ws/class) that carries what the teacher presents, following and
// detaching, the audience count, and the teacher's class panel (viewer link and QR code,
// students' runs, the students' setting, a new token). Pure rules: role.js and follow.js.

import { api } from "./api.js";
import { classApi } from "./class_api.js";
import { el } from "./dom.js";
import { queueText } from "./history.js";
import { FollowSwitch, Latest, applyPresented, describePresented, presentedOf, samePresented, sameScene } from "./follow.js";
import { ACTIVE, runButtonsDisabled } from "./live.js";
import { backoffDelay } from "./series.js";
import { powers, roleHint, roleLabel } from "./role.js";
import { indexAtStep } from "./series.js";

const $ = (id) => document.getElementById(id);
const PRESENT_EVERY = 150; // ms: a dragged replay scrubber sends at most ~7 states a second

export class Classroom {
  /**
   * hooks: {app, applyState(), openRun(id, step), openCompare(runs, gid), writeHash(),
   * toast(text), banner(text, kind), showError(e)}
   */
  constructor(hooks) {
    this.h = hooks;
    this.app = hooks.app;
    this.session = null;
    this.follow = new FollowSwitch(true);
    this.ws = null;
    this.attempt = 0;
    this.sent = null;
    this.sendTimer = 0;
    this.lastSend = 0;
    this.audience = null;
    // the teacher's page is private until it presents (a lesson step, "Show the class"): while
    // `presenting`, what it shows goes to the class; opening something else (History, another
    // run) leaves the class where it is and the page says what the class sees
    this.presenting = false;
    this.classSees = null; // the state the class was last sent (from the server on connect)
    this.forced = false; // the next send is an explicit "show the class"
    this.lessons = null; // the lesson view (lesson_view.js), set by it
    this.isReady = false; // the page has opened what its own link says
    // a follower's presented states, applied one at a time, the newest last
    this.applier = new Latest((p) => this.apply(p),
      (e) => this.h.toast(`could not open what the teacher shows: ${e.message}`));
    this.buildTopbar();
  }

  /** The page opened its own link: a follower now shows what the teacher presents. */
  async ready() {
    this.isReady = true;
    if (this.follow.following && this.follow.latest && !this.powers().teacher) await this.applier.push(this.follow.latest);
    // a reloaded teacher page that opened what the class sees presents again
    if (this.powers().teacher && this.classSees && sameScene(this.mine(), this.classSees)) this.presenting = true;
    this.stateChanged();
  }

  /** Before the page opens anything: who am I, a clean address bar, the class channel. */
  async init() {
    const q = new URLSearchParams(location.search);
    const expired = q.get("link") === "expired";
    if (q.has("token") || q.has("link")) {
      // the server trades a teacher link for a cookie; whatever is left, the address bar drops
      history.replaceState(null, "", location.pathname + location.hash);
    }
    await this.loadSession();
    if (expired) this.h.banner("That teacher link no longer works (the token was changed): this page watches only. Ask for the new link, printed where the server runs.", "warn");
    this.connect();
    this.watchForDetach();
  }

  async loadSession() {
    try {
      this.session = await classApi.session();
    } catch (e) {
      this.session = { role: "viewer", owner: null, students_may_run: false, viewer_links: [] };
      this.h.showError(e);
    }
    this.render();
  }

  powers(run = this.app.live && this.app.live.run) {
    return powers(this.session, run);
  }

  /** May a key act? Enter starts a run; the others steer the run shown. */
  keyAllowed(key) {
    const p = this.powers();
    return key === "Enter" ? p.start : p.steer;
  }

  // ---------------------------------------------------------------------------- top bar
  buildTopbar() {
    const bar = document.querySelector(".topbar");
    this.badge = el("span", { class: "role-badge", id: "role-badge", role: "status" });
    this.followBox = el("div", { class: "follow-box", id: "follow-box", hidden: true });
    this.followText = el("span", { class: "follow-text", id: "follow-text" });
    this.followBtn = el("button", { type: "button", class: "small", id: "follow-toggle" });
    this.followBtn.addEventListener("click", () => (this.follow.following ? this.detach() : this.attach()));
    this.followBox.append(this.followText, this.followBtn);
    this.audienceEl = el("span", { class: "audience", id: "audience", hidden: true, title: "pages of the class connected, and how many follow you" });
    this.classBtn = el("button", { type: "button", class: "ghost", id: "class-open", hidden: true, text: "Class" });
    this.classBtn.addEventListener("click", () => this.togglePanel());
    this.seesText = el("span", { class: "class-sees-text", id: "class-sees-text" });
    this.showBtn = el("button", { type: "button", class: "small", id: "present-this", text: "Show the class", title: "Show the class what this page shows now (the class follows your page until you open something else)" });
    this.showBtn.addEventListener("click", () => this.stateChanged(true));
    this.seesBox = el("div", { class: "class-sees", id: "class-sees", hidden: true, role: "status" }, this.seesText, this.showBtn);
    // after the run's connection badge, whose text changes every second ("live · 9.8 frames/s",
    // "reconnecting…"): were the class bar before it, its buttons would move under the pointer
    bar.insertBefore(el("div", { class: "class-bar" }, this.badge, this.seesBox, this.followBox, this.audienceEl, this.classBtn), $("type-size"));
    this.note = el("p", { class: "role-note", id: "role-note", hidden: true });
    this.nameInput = el("input", { type: "text", id: "student-name", maxlength: 32, autocomplete: "nickname", placeholder: "your name", "aria-label": "your name for the class" });
    const join = el("button", { type: "submit", class: "small", text: "Join" });
    this.nameBox = el("form", { class: "name-box", id: "name-box", hidden: true },
      el("label", { for: "student-name", text: "Your name for the class " }), this.nameInput, " ", join);
    this.nameBox.addEventListener("submit", (e) => { e.preventDefault(); this.giveName(); });
    this.nameShown = el("p", { class: "hint", id: "student-named", hidden: true });
    document.querySelector(".sidebar").prepend(this.note, this.nameBox, this.nameShown);
  }

  render() {
    const p = this.powers();
    const label = roleLabel(p);
    this.badge.textContent = label;
    this.badge.hidden = !label;
    this.badge.dataset.role = p.watchOnly ? "viewer" : p.student ? "student" : p.role;
    this.followBox.hidden = p.teacher || p.role === "local";
    // a student (where the teacher lets students run) is asked for a name; a watch-only page
    // offers nothing that acts
    const s = this.session || {};
    const student = p.student;
    this.nameBox.hidden = !student || Boolean(s.name);
    this.nameShown.hidden = !student || !s.name;
    this.nameShown.textContent = s.name ? `The class sees you as ${s.name}.` : "";
    this.classBtn.hidden = !p.teacher;
    this.audienceEl.hidden = !p.teacher;
    this.seesBox.hidden = !p.teacher;
    this.renderSees();
    this.renderFollow();
    this.gate(this.app.live && this.app.live.run);
    if (this.lessons) this.lessons.gate();
    if (!p.start && this.app.welcome) this.app.welcome.hide(); // its buttons would start runs
  }

  /** The teacher's line: whether the class sees this page, or what it sees instead. */
  renderSees() {
    if (!this.powers().teacher) return;
    const mine = this.mine();
    const same = this.presenting && this.classSees && samePresented(mine, this.classSees);
    const following = this.presenting && this.classSees && sameScene(mine, this.classSees);
    this.seesBox.dataset.presenting = following ? "1" : "0";
    this.seesText.textContent = following ? "Presenting"
      : `Class sees: ${describePresented(this.classSees)}`;
    this.seesText.title = following ? "The class sees this page: what you open next stays private unless it is the same run or view"
      : `The class sees ${describePresented(this.classSees)}; this page is private until you press Show the class`;
    this.showBtn.hidden = Boolean(same);
  }

  /** What this page would present now. */
  mine() {
    return presentedOf(this.app.state, this.lessons ? this.lessons.presented() : null);
  }

  async giveName() {
    const name = this.nameInput.value.trim();
    if (!name) return;
    try {
      const r = await classApi.name(name);
      this.session.name = r.name;
      this.render();
      this.h.toast(`The class sees you as ${r.name}.`);
    } catch (e) {
      this.h.showError(e);
    }
  }

  renderFollow() {
    const on = this.follow.following;
    this.followBox.dataset.following = on ? "1" : "0";
    this.followText.textContent = on ? "Following the teacher" : "Exploring on your own";
    this.followBtn.textContent = on ? "Explore on my own" : "Follow the teacher";
    this.followBtn.title = on ? "Stop following: look around yourself (one click brings you back)" : "Show what the teacher shows, from now on";
  }

  /** Show, hide, enable and disable what acts, for the role and the run shown (after setRunUI). */
  gate(run) {
    const p = this.powers(run);
    document.body.dataset.role = p.watchOnly ? "viewer" : p.student ? "student" : p.role;
    const active = Boolean(run && ACTIVE.has(run.status));
    const show = (id, on) => { const e = $(id); if (e) e.hidden = !on; };
    show("start", p.start);
    $("start").disabled = !p.start;
    // what the run's state allows (as setRunUI does), and only where the role may steer
    for (const [id, off] of Object.entries(runButtonsDisabled(run))) {
      show(id, p.steer);
      $(id).disabled = !p.steer || off;
    }
    // Reset stops the run shown and starts it again: it takes both powers
    show("reset", p.start && p.steer);
    $("reset").disabled = !(p.start && p.steer) || !run || run.status === "stopping";
    // the single-step row is for whoever steers; a watch-only page has no empty "Paused:" row
    document.querySelector(".step-row").hidden = !p.steer;
    document.querySelector(".runbox .buttons").hidden = !p.start && !p.steer;
    document.querySelector(".runbox .keys").hidden = !p.steer && !p.start;
    document.querySelector(".clone-row").hidden = !p.compare;
    $("clone").disabled = !run || !p.compare || !$("clone-objective").options.length;
    $("clone-objective").disabled = !p.compare;
    $("preset").disabled = !p.start || Boolean(this.lessons && this.lessons.cursor);
    $("family").disabled = $("preset").disabled; // the family chooser goes with the presets
    if (!p.steer) $("apply-preset").hidden = true;
    $("compare-start").hidden = !p.compare;
    for (const i of document.querySelectorAll("#compare-choices input")) i.disabled = !p.compare;
    document.querySelector(".compare-form").hidden = !p.compare;
    $("compare-new").hidden = !p.compare;
    if (this.app.controls) this.app.controls.setEditable((k) => (active ? p.steer && k.live : p.start));
    const hint = roleHint(p, run);
    this.note.textContent = hint;
    this.note.hidden = !hint;
    this.note.dataset.kind = p.watchOnly ? "watch" : "student";
    if (p.watchOnly) $("steer-hint").textContent = run ? "The teacher's run: its settings are shown as they are in force." : "The teacher starts the runs: they appear here.";
    if (this.draw) this.draw.gate(p);
  }

  // ---------------------------------------------------------------------------- class channel
  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws/class`);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      if (!this.follow.following) this.sendFollow();
    };
    ws.onmessage = (e) => {
      try {
        this.onMessage(JSON.parse(e.data));
      } catch (err) {
        console.warn("class message", err);
      }
    };
    ws.onclose = () => {
      this.ws = null;
      const delay = backoffDelay(this.attempt, Math.random());
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    };
    ws.onerror = () => {};
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  sendFollow() {
    this.send({ type: "follow", following: this.follow.following });
  }

  onMessage(m) {
    if (m.type === "class") {
      if (m.settings) Object.assign(this.session, m.settings);
      if (m.audience) this.showAudience(m.audience);
      if (m.presented && !this.powers().teacher) this.onPresent({ seq: m.seq, state: m.presented });
      if (this.powers().teacher) {
        // (re)connected: the class sees what was presented last; this page presents again only
        // if it shows the same thing (a reload), never what it opened privately meanwhile
        this.classSees = m.presented || null;
        this.sent = this.classSees;
        this.presenting = Boolean(this.classSees && sameScene(this.mine(), this.classSees));
        this.stateChanged();
      }
      this.render();
    } else if (m.type === "present") {
      if (!this.powers().teacher) this.onPresent(m);
      else { this.classSees = m.state; this.renderSees(); } // another teacher page presented
    } else if (m.type === "audience") {
      this.showAudience(m);
    } else if (m.type === "settings") {
      Object.assign(this.session, m.settings);
      this.render();
      if (this.panel && !this.panel.hidden) this.fillPanel();
    } else if (m.type === "names") {
      // a student named themselves, or the teacher removed a name: this page's may have changed
      this.loadSession();
      if (this.panel && !this.panel.hidden) this.listStudentRuns();
    } else if (m.type === "session") {
      // the token changed: ask again who this page is (an old teacher session is over)
      this.loadSession().then(() => { if (this.ws) this.ws.close(); });
    } else if (m.type === "error") {
      // a refused `present` never reached the class: forget it was sent, so that presenting
      // the same view again sends it instead of skipping it as already sent
      if (this.powers().teacher) this.sent = null;
      this.h.toast(`class: ${m.message}`);
    }
  }

  showAudience(a) {
    this.audience = a;
    this.audienceEl.textContent = `${a.connected} watching · ${a.following} following`;
    const n = $("class-audience");
    if (n) n.textContent = this.audienceEl.textContent;
  }

  // ---------------------------------------------------------------------------- presenting
  /**
   * The teacher's page state changed: send it to the class (throttled, only when changed) while
   * this page presents. `show`: present it now (a lesson step, "Show the class"); otherwise a
   * page that opened something else than the class sees stops presenting and stays private.
   */
  stateChanged(show = false) {
    if (!this.powers().teacher) return;
    if (show) { this.presenting = true; this.forced = true; }
    this.renderSees();
    clearTimeout(this.sendTimer);
    const wait = Math.max(0, this.lastSend + PRESENT_EVERY - performance.now());
    this.sendTimer = setTimeout(() => this.present(), wait);
  }

  present() {
    const p = this.mine();
    // a page that opened another run, view or comparison than the class sees stops presenting
    if (this.presenting && !this.forced && this.classSees && !sameScene(p, this.classSees)) this.presenting = false;
    this.forced = false;
    if (this.presenting && !(this.sent && samePresented(p, this.sent)) && this.send({ type: "present", state: p })) {
      this.sent = p;
      this.classSees = p;
      this.lastSend = performance.now();
    }
    this.renderSees();
  }

  // ---------------------------------------------------------------------------- following
  async onPresent(msg) {
    const state = this.follow.receive(msg);
    if (state && this.isReady) await this.applier.push(state);
  }

  async apply(presented) {
    const app = this.app;
    const { state, reopen, replayOnly } = applyPresented(app.state, presented);
    app.state = state;
    // the teacher shows a run or a lesson: the page is no first visit's blank page any more
    if ((state.run || presented.lesson || state.view !== "live") && app.welcome) app.welcome.hide();
    this.h.writeHash();
    for (const k of ["heat", "real", "arrows"]) { const c = $(`show-${k}`); if (c) c.checked = state.show[k]; }
    app.live.samples.setShow(state.show);
    if (this.lessons) await this.lessons.follow(presented.lesson, presented.lesson_step);
    if (replayOnly && app.live.replay && app.live.runId === state.run && state.replay !== null) {
      const i = indexAtStep(app.live.replay.steps, state.replay);
      $("scrub").value = String(i);
      app.live.showReplay(i);
    } else if (reopen || (state.replay !== null && state.run && app.live.runId === state.run && !app.live.replay)) {
      await this.h.applyState();
    }
    if (this.lessons) this.lessons.reveal(); // the step's panels, now that its view is open
  }

  detach() {
    if (this.follow.detach()) {
      this.sendFollow();
      this.renderFollow();
    }
  }

  async attach() {
    const latest = this.follow.attach();
    this.sendFollow();
    this.renderFollow();
    if (latest) await this.applier.push(latest);
  }

  /** A follower who navigates (tabs, open buttons, the scrubber, layers) or starts a run of
   * their own is exploring: detach. */
  watchForDetach() {
    // (starting a run or drawing data of one's own is exploring too)
    const nav = ".tab, #history-table button, .cmp-card button, #scrub, #scrub-play, .layer-tool input, #history-refresh, #start, #draw-open";
    const handler = (e) => {
      if (!e.isTrusted || this.powers().teacher || !this.follow.following) return;
      if (e.target.closest && e.target.closest(nav)) this.detach();
    };
    document.addEventListener("click", handler, true);
    document.addEventListener("input", handler, true);
  }

  // ---------------------------------------------------------------------------- teacher's panel
  togglePanel() {
    if (!this.panel) this.buildPanel();
    this.panel.hidden = !this.panel.hidden;
    this.classBtn.setAttribute("aria-expanded", String(!this.panel.hidden));
    clearInterval(this.panelTimer);
    if (!this.panel.hidden) {
      this.fillPanel();
      this.panelTimer = setInterval(() => this.listStudentRuns(), 3000);
    }
  }

  buildPanel() {
    const close = el("button", { type: "button", class: "ghost small", text: "Close", "aria-label": "close the class panel" });
    close.addEventListener("click", () => this.togglePanel());
    this.linkBox = el("div", { class: "class-links" });
    const allow = el("input", { type: "checkbox", id: "class-students" });
    allow.addEventListener("change", () => this.saveSettings({ students_may_run: allow.checked }));
    const cap = el("input", { type: "number", id: "class-cap", min: 1, max: 10, step: 1 });
    cap.addEventListener("change", () => this.saveSettings({ student_cap: Number(cap.value) }));
    const signout = el("button", { type: "button", class: "small", id: "class-signout", text: "Sign out" });
    signout.title = "End this browser's teacher session (the teacher link signs in again)";
    signout.addEventListener("click", () => this.signout());
    this.studentList = el("ul", { class: "class-students", id: "class-students-list" });
    const rotate = el("button", { type: "button", class: "small danger", id: "class-rotate", text: "New teacher token" });
    rotate.title = "Every old teacher link and teacher session stops working; this browser stays the teacher; the new link is printed where the server runs";
    rotate.addEventListener("click", () => this.rotate());
    this.runList = el("ul", { class: "class-runs", id: "class-runs" });
    const stopStudents = el("button", { type: "button", class: "small ghost danger", id: "class-stop-students", text: "Stop every student run" });
    stopStudents.addEventListener("click", () => this.stopRuns("students"));
    const stopAll = el("button", { type: "button", class: "small danger", id: "class-stop-all", text: "Stop all runs" });
    stopAll.title = "Every run on the server that trains or waits, the lessons' and the students' (they stay in History)";
    stopAll.addEventListener("click", () => this.stopRuns("all"));
    this.activeLine = el("p", { class: "hint", id: "class-active" });
    this.panel = el("aside", { class: "class-panel", id: "class-panel", hidden: true, "aria-label": "Class" },
      el("header", {}, el("h2", { text: "Class" }), el("span", { class: "audience", id: "class-audience", text: this.audienceEl.textContent }), close),
      el("section", {}, el("h3", { text: "Viewer link" }), this.linkBox),
      el("section", {}, el("h3", { text: "Students' own runs" }),
        el("label", { class: "class-setting" }, allow, " Students may start and steer their own runs"),
        el("label", { class: "class-setting" }, "At most ", cap, " active runs per student"),
        this.runList),
      el("section", {}, el("h3", { text: "Students" }), this.studentList),
      el("section", {}, el("h3", { text: "Runs on the server" }), this.activeLine,
        el("div", { class: "class-stop" }, stopStudents, " ", stopAll)),
      el("section", {}, el("h3", { text: "Teacher token" }),
        el("p", { class: "hint", text: "If the teacher link was shared by mistake, make a new token: old links stop working." }), rotate, " ", signout));
    document.body.append(this.panel);
  }

  fillPanel() {
    const s = this.session;
    $("class-students").checked = Boolean(s.students_may_run);
    $("class-cap").value = String(s.student_cap || 1);
    this.linkBox.replaceChildren();
    const links = s.viewer_links && s.viewer_links.length ? s.viewer_links : [`${location.origin}/`];
    const main = links[0];
    const text = el("code", { class: "viewer-link", id: "viewer-link", text: main });
    const copy = el("button", { type: "button", class: "small", text: "Copy" });
    copy.addEventListener("click", async () => {
      try { await navigator.clipboard.writeText(main); this.h.toast("Viewer link copied (it carries no token)."); } catch { this.h.toast(`Viewer link: ${main}`); }
    });
    const qr = el("img", { class: "qr", id: "viewer-qr", src: classApi.qrUrl(0), alt: `QR code of the viewer link ${main}`, width: 200, height: 200 });
    this.linkBox.append(el("div", { class: "link-row" }, text, copy), qr);
    for (const other of links.slice(1)) this.linkBox.append(el("div", { class: "hint", text: `also: ${other}` }));
    this.listStudentRuns();
  }

  async saveSettings(body) {
    try {
      Object.assign(this.session, await classApi.settings(body));
      this.render();
    } catch (e) {
      this.h.showError(e);
      this.fillPanel();
    }
  }

  async signout() {
    try {
      await classApi.signout();
    } catch (e) {
      if (e.status !== 403) this.h.showError(e); // 403: the session had already ended
    }
    if (this.panel && !this.panel.hidden) this.togglePanel();
    await this.loadSession();
    if (this.ws) this.ws.close(); // the class channel greets this page again, as a viewer
  }

  async listStudents() {
    let students;
    try {
      students = await classApi.students();
    } catch {
      return;
    }
    this.studentList.replaceChildren();
    if (!students.length) this.studentList.append(el("li", { class: "hint", text: "No student has given a name yet." }));
    for (const s of students) {
      const remove = el("button", { type: "button", class: "small ghost danger", text: "Remove name" });
      remove.title = "The student is asked for another name";
      remove.addEventListener("click", async () => {
        try { await classApi.removeName(s.handle); this.listStudents(); } catch (e) { this.h.showError(e); }
      });
      const runs = s.active_runs ? ` · ${s.active_runs} active run${s.active_runs === 1 ? "" : "s"}` : "";
      this.studentList.append(el("li", { "data-student": s.handle }, el("span", { class: "student-name", text: s.name }), runs, " ", remove));
    }
  }

  async rotate() {
    if (!confirm("Make a new teacher token? Every old teacher link and teacher session stops working; this browser stays the teacher.")) return;
    try {
      const r = await classApi.rotate();
      this.h.toast(r.printed ? "New token made: the new teacher link is printed where the server runs." : "New token made.", 8000);
    } catch (e) {
      this.h.showError(e);
    }
  }

  /** Stop every student's run ("students") or every run on the server ("all"). */
  async stopRuns(which) {
    try {
      let body = { all: true };
      if (which === "students") {
        const ids = (await api.runs()).runs.filter((r) => r.owner && r.owner.startsWith("student:") && ACTIVE.has(r.status) && r.status !== "stopping").map((r) => r.id);
        if (!ids.length) { this.h.toast("No student run is training."); return; }
        body = { runs: ids.slice(-64) };
      }
      const r = await api.stopRuns(body);
      this.h.toast(`Stopped ${r.stopped.length} run${r.stopped.length === 1 ? "" : "s"}; they stay in History.`);
    } catch (e) {
      this.h.showError(e);
    }
    this.listStudentRuns();
  }

  async listStudentRuns() {
    if (!this.panel || this.panel.hidden) return;
    this.listStudents();
    let runs;
    try {
      const all = (await api.runs()).runs;
      const active = all.filter((r) => ACTIVE.has(r.status) && r.status !== "stopping");
      const queued = active.filter((r) => r.status === "queued").length;
      this.activeLine.textContent = active.length
        ? `${active.length} run${active.length === 1 ? "" : "s"} training or waiting${queued ? ` (${queued} queued)` : ""}.`
        : "Nothing is training.";
      runs = all.filter((r) => r.owner === "student");
    } catch {
      return;
    }
    this.runList.replaceChildren();
    if (!runs.length) this.runList.append(el("li", { class: "hint", text: this.session.students_may_run ? "No student runs yet." : "Students watch only." }));
    for (const r of runs.slice(-40).reverse()) {
      const open = el("button", { type: "button", class: "small", text: "Show the class" });
      open.title = "Open this run here and show it to the class";
      open.addEventListener("click", async () => { await this.h.openRun(r.id, null); this.stateChanged(true); });
      const stop = el("button", { type: "button", class: "small ghost danger", text: "Stop", disabled: !ACTIVE.has(r.status) || r.status === "stopping" });
      stop.addEventListener("click", async () => {
        try { await api.control(r.id, { action: "stop" }); this.listStudentRuns(); } catch (e) { this.h.showError(e); }
      });
      const badge = el("span", { class: "badge", text: r.status });
      badge.dataset.status = r.status;
      const queue = queueText(r);
      this.runList.append(el("li", { "data-run": r.id }, el("code", { text: r.id }), ` ${r.owner_name || "a student without a name"} · ${r.config.dataset} · ${r.config.objective} `, badge, queue ? ` ${queue} ` : " ", open, " ", stop));
    }
  }
}

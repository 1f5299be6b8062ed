// pybernetes dashboard: draws the cluster from the server's event stream (/events: a snapshot, then one message per
// change) by updating only the elements a message touches. window.pbDashboard exposes what tests and the bench read.
"use strict";
(() => {
  const COMPONENTS = ["apiserver", "etcd", "scheduler", "controller-manager"];
  const COMPACT_AFTER = 8;  // nodes: past this, the compact grid
  const TIMELINE_MAX = 300;
  let state = { control: {}, nodes: {}, pods: {}, services: {} };
  const dash = { state, seen: {}, latencies: [], errors: [], messages: 0 };
  window.pbDashboard = dash;
  window.addEventListener("error", (e) => dash.errors.push(String(e.message)));

  const $ = (id) => document.getElementById(id);
  const podEls = new Map(), nodeEls = new Map(), svcEls = new Map(), compEls = new Map();

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Keep a container's children ordered by their data-key (insert before the first greater one).
  function place(container, child) {
    const key = child.dataset.key;
    let before = null;
    for (const c of container.children) {
      if (c !== child && c.dataset.key.localeCompare(key, undefined, { numeric: true }) > 0) { before = c; break; }
    }
    if (child.parentElement !== container || child.nextElementSibling !== before) container.insertBefore(child, before);
  }

  function podClass(p) {
    if (p.status === "Terminating") return "s-terminating";
    if (p.status === "Running") return p.ready ? "s-running" : "s-notready";
    if (p.status === "Pending" || p.status === "ContainerCreating" || p.status === "PodInitializing") return "s-pending";
    if (p.status === "Succeeded") return "s-succeeded";
    return "s-failed";
  }

  // The compact grid's one-glyph label (the colour never stands alone).
  function podShort(p) {
    if (p.status === "Running") return p.ready ? "R✓" : "R✗";
    return { Pending: "P", Succeeded: "S", Terminating: "T", ContainerCreating: "P" }[p.status] || "F";
  }

  function podLabel(p) {
    const mark = p.status === "Running" ? (p.ready ? " ✓" : " ✗") : "";
    return `${p.status}${mark} · ${p.containers} · ↻${p.restarts}`;
  }

  function podDetail(p) {
    return `pod ${p.namespace}/${p.name}: ${p.status}, ${p.ready ? "ready" : "not ready"}, containers ready ` +
      `${p.containers}, ${p.restarts} restarts, node ${p.node || "none (pending)"}, IP ${p.ip || "none"}` +
      (p.owner ? `, owned by ${p.owner}` : "");
  }

  function renderPod(key) {
    const p = state.pods[key];
    let e = podEls.get(key);
    if (!p) {
      if (e) { e.remove(); podEls.delete(key); }
      return;
    }
    if (!e) {
      e = el("div", "pod");
      e.tabIndex = 0;
      e.dataset.key = key;
      e.append(el("span", "pname"), el("span", "pstat"), el("span", "pshort"));
      podEls.set(key, e);
    }
    e.className = `pod ${podClass(p)}`;
    e.children[0].textContent = p.name;
    e.children[1].textContent = podLabel(p);
    e.children[2].textContent = podShort(p);
    e.dataset.status = p.status;
    e.dataset.node = p.node;
    e.dataset.detail = podDetail(p);
    e.setAttribute("aria-label", podDetail(p));
    e.title = podDetail(p);
    const node = p.node && nodeEls.get(p.node);
    place(node ? node.querySelector(".pods") : $("pending-pods"), e);
  }

  function healthSpan(text, cls) {
    return el("span", `health h-${cls.replace(/\s+/g, "")}`, text);
  }

  function renderNode(key) {
    const n = state.nodes[key];
    let e = nodeEls.get(key);
    if (!n) {
      if (e) {
        nodeEls.delete(key);
        e.remove();
        for (const [k, p] of Object.entries(state.pods)) if (p.node === key) renderPod(k);
      }
      return;
    }
    const fresh = !e;
    if (fresh) {
      e = el("section", "node");
      e.tabIndex = 0;
      e.dataset.key = key;
      const head = el("header");
      head.append(el("span", "nname", n.name), el("span", "nstat"), el("span", "nip"));
      e.append(head, el("div", "parts"), el("div", "msg"), el("div", "pods"));
      nodeEls.set(key, e);
    }
    e.className = `node n-${n.status.toLowerCase()}`;
    e.dataset.status = n.status;
    e.querySelector(".nstat").textContent = n.status + (n.unschedulable ? ", cordoned" : "");
    e.querySelector(".nip").textContent = n.ip;
    const parts = e.querySelector(".parts");
    parts.replaceChildren();
    for (const [label, h] of [["kubelet", n.kubelet], ["containerd", n.runtime], ["kube-proxy", n.proxy]]) {
      const s = el("span", "part", `${label} `);
      s.dataset.part = label;
      s.dataset.health = h;
      s.append(healthSpan(h, h));
      parts.append(s);
    }
    e.querySelector(".msg").textContent = n.status === "Ready" ? "" : n.message;
    const detail = `node ${n.name}: ${n.status} (${n.message}); kubelet ${n.kubelet}, containerd ${n.runtime}, ` +
      `kube-proxy ${n.proxy}; conditions ${n.conditions.map((c) => `${c.type}=${c.status}`).join(", ")}`;
    e.dataset.detail = detail;
    e.setAttribute("aria-label", detail);
    place($("node-grid"), e);
    if (fresh) for (const [k, p] of Object.entries(state.pods)) if (p.node === key) renderPod(k);
  }

  function renderComponent(name) {
    const c = state.control[name];
    let e = compEls.get(name);
    if (!e) {
      e = el("div", "component");
      e.tabIndex = 0;
      e.dataset.key = name;
      e.append(el("div", "name", name), el("div", "sub"), el("div", "sub"));
      if (name === "etcd") e.append(el("ul", "members"));
      compEls.set(name, e);
      $("components").append(e);
    }
    if (!c) return;
    e.className = `component h-${c.health}`;
    e.dataset.health = c.health;
    const head = e.children[0];
    head.replaceChildren(el("span", "", `${name} `), healthSpan(c.health, c.health));
    e.children[1].textContent = c.leader ? `leader: ${c.leader}` : (name === "apiserver" || name === "etcd" ? "" : "no leader");
    e.children[2].textContent = c.detail;
    let detail = `${name}: ${c.health}; ${c.detail}${c.leader ? `; leader Lease held by ${c.leader}` : ""}`;
    if (name === "etcd") {
      e.children[1].textContent = c.leader ? `leader: ${c.leader}` : (c.membersError || "");
      e.children[3].replaceChildren(...(c.members || []).map(renderMember));
      detail = `etcd: ${c.health}; ${c.detail}; members: ` +
        ((c.members || []).map(memberText).join("; ") || c.membersError || "unknown");
    }
    e.dataset.detail = detail;
    e.setAttribute("aria-label", detail);
  }

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }

  function memberText(m) {
    if (m.error) return `${m.name} ${m.error}`;
    return `${m.name}${m.leader ? " (leader)" : ""} DB ${bytes(m.dbSize)}, raft index ${m.raftIndex}, term ${m.raftTerm}`;
  }

  // One etcd member: ★ marks the leader (the words say it too); a member that does not answer is greyed.
  function renderMember(m) {
    const li = el("li", `member ${m.error ? "m-down" : m.leader ? "m-leader" : "m-ok"}`);
    li.dataset.key = m.name;
    li.dataset.leader = String(m.leader);
    li.title = `${m.name} (id ${m.id}) ${m.clientURLs.join(", ")}${m.version ? `, etcd ${m.version}` : ""}`;
    li.append(el("span", "mname", `${m.leader ? "★ " : ""}${m.name}`));
    li.append(el("span", "mstat", m.error ? m.error :
      `${m.leader ? "leader · " : ""}${bytes(m.dbSize)} · idx ${m.raftIndex}`));
    return li;
  }

  const ENDPOINTS_SHOWN = 8;
  function shortList(ips) {
    const more = ips.length - ENDPOINTS_SHOWN;
    return ips.slice(0, ENDPOINTS_SHOWN).join(", ") + (more > 0 ? ` and ${more} more` : "");
  }

  function renderService(key) {
    const s = state.services[key];
    let e = svcEls.get(key);
    if (!s) {
      if (e) { e.remove(); svcEls.delete(key); }
      return;
    }
    if (!e) {
      e = el("tr");
      e.dataset.key = key;
      for (let i = 0; i < 5; i++) e.append(el("td"));
      svcEls.set(key, e);
    }
    const cells = e.children;
    cells[0].textContent = `${s.namespace}/${s.name}`;
    cells[1].textContent = s.type;
    cells[2].textContent = s.clusterIP || "None";
    cells[3].textContent = s.ports.join(", ");
    cells[4].replaceChildren();
    if (!s.endpoints.length && !s.notReady.length) cells[4].append(el("span", "ep-none", "no endpoints"));
    else cells[4].append(el("span", "", shortList(s.endpoints)));
    if (s.notReady.length) cells[4].append(el("span", "ep-notready", ` (not ready: ${shortList(s.notReady)})`));
    e.title = `${s.namespace}/${s.name} endpoints: ${s.endpoints.join(", ") || "none"}` +
      (s.notReady.length ? `; not ready: ${s.notReady.join(", ")}` : "");
    place($("svc-rows"), e);
  }

  // What stops and what keeps working, in words, from the health of the parts.
  function renderImpact() {
    const lines = [];
    const health = (n) => (state.control[n] || {}).health;
    if (health("apiserver") === "failing") lines.push("API server down: no changes can be made or seen; running pods keep running.");
    // "stale": its leader Lease expired. "unknown" (no Lease at all, e.g. run without leader election) says nothing.
    if (health("scheduler") === "stale") lines.push("No scheduler leader: new pods stay Pending; running pods and Services keep working.");
    if (health("controller-manager") === "stale") lines.push("No controller-manager leader: deleted pods are not replaced, endpoints are not updated.");
    for (const m of (state.control.etcd || {}).members || []) {
      if (m.error) lines.push(`etcd member ${m.name} down (${m.error}): the others keep serving while a majority answers.`);
    }
    for (const n of Object.values(state.nodes)) {
      if (n.status !== "Ready") lines.push(`${n.name} ${n.status}: its pods are not restarted there; Services route to ready endpoints elsewhere.`);
      else if (n.proxy === "stopped" || n.proxy === "stale") lines.push(`${n.name} kube-proxy ${n.proxy}: its Service rules stay as last written (running pods and existing endpoints keep working there; changes are not applied).`);
    }
    $("impact").replaceChildren(...lines.map((l) => el("li", "", l)));
  }

  function counts() {
    $("node-count").textContent = String(nodeEls.size);
    $("pending-count").textContent = String($("pending-pods").children.length);
    $("svc-count").textContent = String(svcEls.size);
    $("node-grid").classList.toggle("compact", nodeEls.size > COMPACT_AFTER);
  }

  function addEntry(entry) {
    const li = el("li", entry.warning ? "warning" : "");
    const d = new Date(entry.at * 1000);
    const when = d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
    li.append(el("span", "when", when), el("span", "who", entry.component), el("span", "obj", entry.object),
      el("span", "what", entry.what));
    const list = $("events");
    list.prepend(li);
    while (list.children.length > TIMELINE_MAX) list.lastElementChild.remove();
  }

  const RENDER = { pods: renderPod, nodes: renderNode, services: renderService, control: renderComponent };

  function reset(snap) {
    state = { control: snap.control, nodes: snap.nodes, pods: snap.pods, services: snap.services };
    dash.state = state;
    for (const m of [podEls, nodeEls, svcEls]) { for (const e of m.values()) e.remove(); m.clear(); }
    for (const name of COMPONENTS) renderComponent(name);
    for (const k of Object.keys(state.nodes)) renderNode(k);
    for (const k of Object.keys(state.pods)) renderPod(k);
    for (const k of Object.keys(state.services)) renderService(k);
    $("events").replaceChildren();
    for (const e of snap.timeline) addEntry(e);
  }

  function apply(msg) {
    dash.messages++;
    if (msg.type === "snapshot") {
      reset(msg);
    } else if (msg.type === "upsert" || msg.type === "delete") {
      if (msg.type === "upsert") state[msg.kind][msg.key] = msg.view;
      else delete state[msg.kind][msg.key];
      RENDER[msg.kind](msg.key);
      const now = Date.now();
      dash.seen[`${msg.kind}/${msg.key}`] = { op: msg.type, at: now };
      dash.latencies.push(now - msg.t);
      if (dash.latencies.length > 2000) dash.latencies.splice(0, 1000);
    } else if (msg.type === "timeline") {
      addEntry(msg.entry);
      return;
    }
    counts();
    renderImpact();
  }

  document.addEventListener("focusin", (ev) => {
    const t = ev.target.closest("[data-detail]");
    if (t) $("details").textContent = t.dataset.detail;
  });

  const conn = $("conn");
  const source = new EventSource("/events");
  source.onopen = () => { conn.textContent = "live"; conn.className = "conn conn-live"; };
  source.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "conn conn-wait"; };
  source.onmessage = (ev) => apply(JSON.parse(ev.data));
})();

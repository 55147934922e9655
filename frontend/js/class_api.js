// The classroom's HTTP calls (server/api_class.py, server/lessons.py, server/uploads.py).

import { request } from "./api.js";

export const classApi = {
  session: () => request("GET", "/api/session"),
  settings: (body) => request("POST", "/api/class/settings", body),
  rotate: () => request("POST", "/api/class/rotate"),
  signout: () => request("POST", "/api/session/signout"),
  name: (name) => request("POST", "/api/session/name", { name }),
  students: () => request("GET", "/api/class/students"),
  removeName: (handle) => request("DELETE", `/api/class/students/${encodeURIComponent(handle)}/name`),
  qrUrl: (i = 0) => `/api/class/qr.svg?link=${i}`,
  lessons: () => request("GET", "/api/lessons"),
  lesson: (name) => request("GET", `/api/lessons/${encodeURIComponent(name)}`),
  upload: (csv) => request("POST", "/api/uploads", { text: csv, type: "text/csv" }),
};

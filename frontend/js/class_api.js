// The classroom's HTTP calls (server/api_class.py, server/lessons.py, server/uploads.py).

import { request } from "./api.js";

export const classApi = {
  session: () => request("GET", "/api/session"),
  settings: (body) => request("POST", "/api/class/settings", body),
  rotate: () => request("POST", "/api/class/rotate"),
  qrUrl: (i = 0) => `/api/class/qr.svg?link=${i}`,
  lessons: () => request("GET", "/api/lessons"),
  lesson: (name) => request("GET", `/api/lessons/${encodeURIComponent(name)}`),
  upload: (csv) => request("POST", "/api/uploads", { text: csv, type: "text/csv" }),
};

// What a page may do, from its role (GET /api/session): pure, so the rules are tested in node.
//
// - local: no token on this server: the single local user does everything.
// - teacher: does everything, and presents to the class.
// - viewer: watches. Where the teacher lets students run, a viewer is a student: may start runs
//   of their own (capped by the server) and steer only those.

/**
 * The page's powers for `session` ({role, owner, students_may_run}) while showing `run`. A run
 * says whether it is this browser's own (`mine`): the server never shows a student's id.
 */
export function powers(session, run = null) {
  const role = session ? session.role : "viewer";
  const all = role === "teacher" || role === "local";
  const student = !all && Boolean(session && session.students_may_run && session.owner === "student");
  const own = Boolean(run && run.mine);
  return {
    role,
    teacher: role === "teacher",
    student,
    watchOnly: !all && !student,
    start: all || student, // start runs, draw or upload data
    compare: all, // compare groups are the teacher's
    remove: all, // delete runs
    steer: all || (student && own), // pause / stop / change the run shown
    present: role === "teacher",
  };
}

/** The words of the role badge. */
export function roleLabel(p) {
  if (p.role === "teacher") return "Teacher";
  if (p.role === "local") return "";
  return p.student ? "Student" : "Watch only";
}

/** The line under the badge that says what this page may do, for a person. */
export function roleHint(p, run = null) {
  if (!p.watchOnly && !p.student) return "";
  if (p.watchOnly) return "Watch only: the teacher runs and steers; you see everything live.";
  if (run && !p.steer) return "This run is not yours: you watch it. Start your own to steer it.";
  return "You may start and steer runs of your own.";
}

import type { EngineStatus } from "../ipc";

/** The dashboard. Until a task exists it is the empty state that points at the task wizard. */
export function Dashboard({ status }: { status: EngineStatus }) {
  if (status.taskCount > 0) {
    return (
      <section aria-labelledby="dashboard-title">
        <h2 id="dashboard-title">Backup tasks</h2>
        <p>
          {status.taskCount} backup {status.taskCount === 1 ? "task" : "tasks"}
        </p>
      </section>
    );
  }
  return (
    <section className="empty-state" aria-labelledby="empty-title">
      <h2 id="empty-title">No backup tasks yet</h2>
      <p className="muted">
        A backup task copies your Microsoft 365 mailboxes into an encrypted archive on this
        computer, on a schedule you choose.
      </p>
      {/* The task wizard is not built yet; the button says so rather than doing nothing. */}
      <button type="button" className="primary" disabled title="The task wizard is not available in this build">
        Create a backup task
      </button>
      <p className="muted small">The task wizard is not available in this build yet.</p>
    </section>
  );
}

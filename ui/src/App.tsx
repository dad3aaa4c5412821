import { useQuery } from "@tanstack/react-query";
import { ipc } from "./ipc";
import { Dashboard } from "./screens/Dashboard";

export function App() {
  const status = useQuery({ queryKey: ["engine-status"], queryFn: ipc.engineStatus });

  return (
    <div className="app">
      <header className="app-header">
        <img src="/favicon.png" alt="" className="app-logo" />
        <h1>Strongroom</h1>
      </header>
      <main className="app-main">
        {status.isPending && <p className="muted">Starting…</p>}
        {status.isError && (
          <div role="alert" className="alert">
            <p>Strongroom's engine did not answer: {status.error.message}</p>
            <button type="button" onClick={() => status.refetch()}>
              Try again
            </button>
          </div>
        )}
        {status.isSuccess && <Dashboard status={status.data} />}
      </main>
      <footer className="app-footer">
        {status.isSuccess && (
          <span data-testid="engine-version">
            Strongroom {status.data.version} · {status.data.busy ? "working" : "idle"}
          </span>
        )}
      </footer>
    </div>
  );
}

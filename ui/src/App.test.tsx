import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { mockIPC } from "@tauri-apps/api/mocks";
import { App } from "./App";
import type { EngineStatus } from "./ipc";

function renderApp() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <App />
    </QueryClientProvider>,
  );
}

const idle: EngineStatus = { version: "9.8.7", taskCount: 0, busy: false };

describe("App", () => {
  it("shows the empty dashboard and the engine's version", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "engine_status") return idle;
    });
    renderApp();
    expect(await screen.findByRole("heading", { name: "No backup tasks yet" })).toBeInTheDocument();
    expect(screen.getByTestId("engine-version")).toHaveTextContent("Strongroom 9.8.7 · idle");
    expect(screen.getByRole("button", { name: "Create a backup task" })).toBeDisabled();
    expect(calls).toEqual(["engine_status"]);
  });

  it("counts tasks instead of the empty state once there are some", async () => {
    mockIPC(() => ({ ...idle, taskCount: 2, busy: true }));
    renderApp();
    expect(await screen.findByText("2 backup tasks")).toBeInTheDocument();
    expect(screen.queryByText("No backup tasks yet")).not.toBeInTheDocument();
    expect(screen.getByTestId("engine-version")).toHaveTextContent("working");
  });

  it("reports an engine error with its message and retries on request", async () => {
    let fail = true;
    mockIPC(() => {
      if (fail) throw { code: "internal", message: "catalog is locked" };
      return idle;
    });
    renderApp();
    expect(await screen.findByRole("alert")).toHaveTextContent("catalog is locked");
    fail = false;
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("heading", { name: "No backup tasks yet" })).toBeInTheDocument();
  });
});

import { mockIPC } from "@tauri-apps/api/mocks";
import { ipc, IpcError } from "./ipc";

describe("ipc", () => {
  it("passes an engine error's code through unchanged", async () => {
    mockIPC(() => {
      throw { code: "internal", message: "boom" };
    });
    await expect(ipc.engineStatus()).rejects.toEqual(new IpcError("internal", "boom"));
    await expect(ipc.engineStatus()).rejects.toHaveProperty("code", "internal");
  });

  it("turns a non-engine failure into an internal error", async () => {
    mockIPC(() => {
      throw new Error("command engine_status not found");
    });
    await expect(ipc.engineStatus()).rejects.toMatchObject({
      code: "internal",
      message: "command engine_status not found",
    });
  });
});

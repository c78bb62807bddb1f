export const runDaemonCommand = async (): Promise<number> => 111;

export const coldplugCommand = async (): Promise<number> => 111;

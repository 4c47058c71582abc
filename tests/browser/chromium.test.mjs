// The console flow (flow.mjs) in Debian's chromium, driven over CDP.
import { consoleFlow } from "./flow.mjs";

consoleFlow("chromium");

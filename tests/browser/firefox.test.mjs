// The console flow (flow.mjs) in Debian's firefox-esr, driven over WebDriver BiDi.
import { consoleFlow } from "./flow.mjs";

consoleFlow("firefox");

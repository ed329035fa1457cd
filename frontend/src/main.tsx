import { render } from "preact";
import { App } from "./app";
import { locale } from "./i18n";
import { initTheme } from "./theme";
import "./styles.css";

document.documentElement.lang = locale;
const root = document.getElementById("app");
initTheme();
if (root) render(<App />, root);

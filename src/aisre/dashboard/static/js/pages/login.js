// The login form, shown when the API answers 401 (an admin key is configured): POST login, then retry the page.

import { login } from "../api.js";
import { h, errorBox } from "../dom.js";

export function loginPage(message, onDone) {
  const input = h("input", { type: "password", name: "key", autocomplete: "current-password", testid: "login-key", required: true, autofocus: true });
  const problem = h("div", { testid: "login-problem" });
  const form = h(
    "form",
    {
      class: "card login",
      testid: "login-form",
      onsubmit: async (event) => {
        event.preventDefault();
        problem.replaceChildren();
        try {
          await login(input.value);
          onDone();
        } catch (exc) {
          problem.replaceChildren(errorBox(exc.message, "login-error"));
        }
      },
    },
    h("h2", {}, "Sign in to the aisre dashboard"),
    h("p", { class: "muted small" }, message || "This dashboard needs the admin key (auth.admin_key in aisre.yaml)."),
    h("label", { for: "key" }, "Admin key"),
    input,
    problem,
    h("button", { type: "submit", testid: "login-submit" }, "Sign in"),
  );
  return { node: h("div", { testid: "page-login" }, form), refreshMs: 0, login: true };
}

// Gets a token from the sandbox's identity service with @azure/msal-node (client credentials) and hands it to
// the `dynamics-web-api` client through its token callback, as a real project does with Entra ID, then prints
// one JSON document: {"steps": {"<name>": {"ok": true, "result": ...} | {"ok": false, "error": {...}}}}.
//
// tests/leadtocash/test_real_token_clients.py runs it with:
//   SANDBOX_URL          mock Sales' origin (https)
//   AUTHORITY            <identity origin>/<tenant id> (https: msal-node insists)
//   CLIENT_ID, CLIENT_SECRET   the app registration
//   DWA_HOME             the folder whose node_modules holds dynamics-web-api and @azure/msal-node
//   NODE_EXTRA_CA_CERTS  the sandbox CA

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.DWA_HOME, "package.json"));
const { DynamicsWebApi } = require("dynamics-web-api");
const msal = require("@azure/msal-node");

const serverUrl = process.env.SANDBOX_URL;
const authority = process.env.AUTHORITY;
const cca = new msal.ConfidentialClientApplication({
    auth: {
        clientId: process.env.CLIENT_ID,
        clientSecret: process.env.CLIENT_SECRET,
        authority,
        // not a Microsoft cloud: trust this host without instance discovery
        knownAuthorities: [new URL(authority).host],
    },
});

const steps = {};

async function step(name, fn) {
    try {
        const result = await fn();
        steps[name] = { ok: true, result: result === undefined ? null : result };
    } catch (error) {
        steps[name] = { ok: false, error: { name: error?.name, message: error?.message, status: error?.status } };
    }
}

async function token() {
    const result = await cca.acquireTokenByClientCredential({ scopes: [`${serverUrl}/.default`] });
    return result.accessToken;
}

const api = new DynamicsWebApi({ serverUrl, dataApi: { version: "9.2" }, onTokenRefresh: token });
const anonymous = new DynamicsWebApi({ serverUrl, dataApi: { version: "9.2" }, onTokenRefresh: async () => "" });

await step("token", async () => (await token()).split(".").length);
await step("whoAmI", () => api.callFunction("WhoAmI"));
await step("create", () => api.create({ collection: "accounts", data: { name: `MSAL JS ${Date.now()}` } }));
await step("retrieveMultiple", async () => (await api.retrieveMultiple({ collection: "accounts", select: ["name"], top: 2 })).value.length);
await step("withoutToken", () => anonymous.callFunction("WhoAmI"));

console.log(JSON.stringify({ steps }));

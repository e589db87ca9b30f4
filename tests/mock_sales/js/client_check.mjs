// Runs the `dynamics-web-api` npm client (v2) against a running mock Sales and prints one JSON document:
// {"steps": {"<name>": {"ok": true, "result": ...} | {"ok": false, "error": {...}}}}.
//
// tests/mock_sales/test_client_js.py starts mock Sales with TLS, installs the package into a cache folder
// and runs this script with:
//   SANDBOX_URL          https://127.0.0.1:<port>/ (the server URL, the only thing a real project changes)
//   DWA_HOME             the folder whose node_modules holds dynamics-web-api
//   NODE_EXTRA_CA_CERTS  the sandbox CA (ca.pem), so Node trusts the generated certificate
//
// Every step runs even when an earlier one failed, so one run reports every incompatibility.

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.DWA_HOME, "package.json"));
const { DynamicsWebApi } = require("dynamics-web-api");

const serverUrl = process.env.SANDBOX_URL;
const api = new DynamicsWebApi({
    serverUrl,
    dataApi: { version: "9.2" },
    onTokenRefresh: async () => "any-token-works",
});
// A second instance that addresses tables by logical name: the library reads EntityDefinitions first.
const byName = new DynamicsWebApi({
    serverUrl,
    useEntityNames: true,
    onTokenRefresh: async () => ({ accessToken: "any-token-works" }),
});

const steps = {};
const state = {};
const stamp = Date.now().toString(36);

function describe(error) {
    return {
        name: error?.name,
        message: error?.message,
        status: error?.status,
        code: error?.code,
        // errors of $batch parts carry the service error as `error`
        inner: error?.error?.message,
    };
}

async function step(name, fn) {
    try {
        const result = await fn();
        steps[name] = { ok: true, result: result === undefined ? null : result };
    } catch (error) {
        steps[name] = { ok: false, error: describe(error) };
    }
}

// ---- functions -----------------------------------------------------------------------------------------
await step("whoAmI", () => api.callFunction("WhoAmI"));

// ---- create / retrieve / update / delete -----------------------------------------------------------------
await step("create", async () => {
    state.accountId = await api.create({ collection: "accounts", data: { name: `JS One ${stamp}`, customertypecode: 3 } });
    return { id: state.accountId };
});

await step("createWithRepresentation", async () => {
    const row = await api.create({
        collection: "accounts",
        data: { name: `JS Two ${stamp}`, telephone1: "555-0102" },
        returnRepresentation: true,
        select: ["name", "telephone1"],
    });
    state.secondId = row.accountid;
    return row;
});

await step("retrieve", () => api.retrieve({
    collection: "accounts",
    key: state.accountId,
    select: ["name", "customertypecode"],
    includeAnnotations: "OData.Community.Display.V1.FormattedValue",
}));

await step("update", async () => {
    const updated = await api.update({ collection: "accounts", key: state.accountId, data: { telephone1: "555-0101" } });
    const row = await api.retrieve({ collection: "accounts", key: state.accountId, select: ["telephone1"] });
    return { updated, telephone1: row.telephone1 };
});

await step("updateSingleProperty", async () => {
    await api.updateSingleProperty({ collection: "accounts", key: state.accountId, fieldValuePair: { description: "set alone" } });
    const row = await api.retrieve({ collection: "accounts", key: state.accountId, select: ["description"] });
    return { description: row.description };
});

await step("updateWithStaleEtag", () => api.update({
    collection: "accounts",
    key: state.accountId,
    data: { telephone1: "never" },
    ifmatch: 'W/"1"',
}));

await step("associateSingleValued", async () => {
    const contacts = await api.retrieveMultiple({ collection: "contacts", select: ["fullname"], top: 1 });
    state.contactId = contacts.value[0].contactid;
    await api.associateSingleValued({
        collection: "accounts",
        primaryKey: state.accountId,
        navigationProperty: "primarycontactid",
        relatedCollection: "contacts",
        relatedKey: state.contactId,
    });
    const row = await api.retrieve({ collection: "accounts", key: state.accountId, select: ["_primarycontactid_value"] });
    return { contactId: state.contactId, primarycontact: row._primarycontactid_value };
});

// ---- upsert by alternate key --------------------------------------------------------------------------
await step("upsertCreatesByAlternateKey", () => api.upsert({
    collection: "products",
    key: `productnumber='JS-${stamp}'`,
    data: { name: `JS product ${stamp}` },
}));

await step("upsertUpdatesByAlternateKey", async () => {
    const returned = await api.upsert({
        collection: "products",
        key: `productnumber='JS-${stamp}'`,
        data: { name: `JS product ${stamp} renamed` },
        returnRepresentation: true,
        select: ["name", "productnumber"],
    });
    const rows = await api.retrieveMultiple({
        collection: "products",
        select: ["name"],
        filter: `productnumber eq 'JS-${stamp}'`,
    });
    return { returned, count: rows.value.length, name: rows.value[0]?.name };
});

await step("upsertCompositeAlternateKey", async () => {
    const companies = await api.retrieveMultiple({
        collection: "cdm_companies",
        select: ["cdm_companycode"],
        filter: "cdm_companycode eq 'usmf'",
    });
    const company = companies.value[0].cdm_companyid;
    const key = `accountnumber='JS-${stamp}',_msdyn_company_value=${company}`;
    await api.upsert({ collection: "accounts", key, data: { name: `JS keyed ${stamp}` } });
    await api.upsert({ collection: "accounts", key, data: { telephone1: "555-0199" } });
    const rows = await api.retrieveMultiple({
        collection: "accounts",
        select: ["name", "telephone1"],
        filter: `accountnumber eq 'JS-${stamp}'`,
    });
    return rows.value.map((row) => ({ name: row.name, telephone1: row.telephone1 }));
});

// ---- queries and paging ---------------------------------------------------------------------------------
await step("retrieveMultiplePaged", async () => {
    const request = {
        collection: "accounts",
        select: ["name", "accountnumber"],
        filter: "statecode eq 0 and startswith(accountnumber,'US-')",
        orderBy: ["accountnumber asc"],
        maxPageSize: 5,
    };
    const first = await api.retrieveMultiple(request);
    const second = await api.retrieveMultiple(request, first.oDataNextLink);
    return {
        firstPage: first.value.map((row) => row.accountnumber),
        secondPage: second.value.map((row) => row.accountnumber),
        hasNextLink: Boolean(first.oDataNextLink),
    };
});

await step("retrieveAll", async () => {
    const all = await api.retrieveAll({
        collection: "accounts",
        select: ["accountnumber"],
        filter: "startswith(accountnumber,'US-')",
        maxPageSize: 4,
    });
    return { count: all.value.length, numbers: all.value.map((row) => row.accountnumber) };
});

await step("retrieveMultipleTop", async () => {
    const rows = await api.retrieveMultiple({ collection: "accounts", select: ["name"], top: 3, orderBy: ["name desc"] });
    return rows.value.map((row) => row.name);
});

await step("retrieveMultipleExpand", async () => {
    const rows = await api.retrieveMultiple({
        collection: "contacts",
        select: ["fullname"],
        filter: "_parentcustomerid_value ne null",
        expand: [{ property: "parentcustomerid_account", select: ["name"] }],
        top: 1,
    });
    return rows.value[0];
});

await step("count", () => api.count({ collection: "accounts", filter: "startswith(accountnumber,'US-')" }));

await step("countWholeTable", () => api.count({ collection: "transactioncurrencies" }));

await step("countAll", () => api.countAll({ collection: "accounts", filter: "startswith(accountnumber,'US-')", select: ["accountid"] }));

await step("useEntityNames", async () => {
    const rows = await byName.retrieveMultiple({ collection: "account", select: ["name"], top: 2 });
    return { count: rows.value.length, collection: byName.Utility.getCollectionName("opportunity") };
});

await step("trackChanges", async () => {
    const first = await api.retrieveMultiple({ collection: "accounts", select: ["name"], trackChanges: true });
    await api.update({ collection: "accounts", key: state.accountId, data: { name: `JS One ${stamp} tracked` } });
    const delta = await api.retrieveMultiple({ collection: "accounts", select: ["name"] }, first.oDataDeltaLink);
    return { hasDeltaLink: Boolean(first.oDataDeltaLink), changed: delta.value.map((row) => row.name) };
});

await step("fetchXml", async () => {
    const fetchXml = "<fetch><entity name='account'><attribute name='accountnumber'/>"
        + "<filter><condition attribute='accountnumber' operator='like' value='US-00%'/></filter>"
        + "<order attribute='accountnumber'/></entity></fetch>";
    const page = await api.fetch({ collection: "accounts", fetchXml, pageNumber: 1 });
    return page.value.map((row) => row.accountnumber);
});

await step("fetchAllPaged", async () => {
    const fetchXml = "<fetch count='2'><entity name='account'><attribute name='accountnumber'/>"
        + "<filter><condition attribute='accountnumber' operator='begins-with' value='US-'/></filter>"
        + "<order attribute='accountnumber' descending='true'/></entity></fetch>";
    const all = await api.fetchAll({
        collection: "accounts",
        fetchXml,
        includeAnnotations: "Microsoft.Dynamics.CRM.fetchxmlpagingcookie",
    });
    return all.value.map((row) => row.accountnumber);
});

// ---- actions and batches --------------------------------------------------------------------------------
await step("callActionQualifyLeadThenWinOpportunity", async () => {
    const leads = await api.retrieveMultiple({ collection: "leads", select: ["fullname"], filter: "statecode eq 0", top: 1 });
    const leadId = leads.value[0].leadid;
    const created = await api.callAction({
        collection: "leads",
        key: leadId,
        actionName: "Microsoft.Dynamics.CRM.QualifyLead",
        action: { CreateAccount: false, CreateContact: false, CreateOpportunity: true, Status: 3 },
    });
    const opportunity = created.value.find((row) => row["@odata.type"] === "#Microsoft.Dynamics.CRM.opportunity");
    const won = await api.callAction({
        actionName: "WinOpportunity",
        action: {
            Status: 3,
            OpportunityClose: { subject: "Won by the JS client", "opportunityid@odata.bind": `/opportunities(${opportunity.opportunityid})` },
        },
    });
    const lead = await api.retrieve({ collection: "leads", key: leadId, select: ["statecode"] });
    const after = await api.retrieve({ collection: "opportunities", key: opportunity.opportunityid, select: ["statecode", "statuscode"] });
    return {
        createdTypes: created.value.map((row) => row["@odata.type"]),
        winResult: won ?? null,
        leadState: lead.statecode,
        opportunityState: [after.statecode, after.statuscode],
    };
});

await step("callActionCreateMultiple", async () => {
    const result = await api.callAction({
        collection: "accounts",
        actionName: "Microsoft.Dynamics.CRM.CreateMultiple",
        action: {
            Targets: [1, 2].map((n) => ({ "@odata.type": "Microsoft.Dynamics.CRM.account", name: `JS bulk ${n} ${stamp}` })),
        },
    });
    state.bulkIds = result.Ids;
    return result;
});

await step("executeBatch", async () => {
    api.startBatch();
    // In batch mode the calls only queue requests; awaiting them makes a bad request fail this step.
    await Promise.all([
        api.create({ collection: "accounts", data: { name: `JS batch ${stamp}` }, contentId: "1" }),
        api.update({ contentId: "$1", data: { telephone1: "555-0150" } }),
        api.retrieveMultiple({ collection: "accounts", select: ["name", "telephone1"], filter: `name eq 'JS batch ${stamp}'` }),
        api.callFunction("WhoAmI"),
    ]);
    return api.executeBatch();
});

await step("executeBatchFailing", async () => {
    api.startBatch();
    await Promise.all([
        api.create({ collection: "accounts", data: { name: `JS doomed ${stamp}` } }),
        api.create({ collection: "accounts", data: { nosuchcolumn: 1 } }),
    ]);
    try {
        await api.executeBatch();
        return { rejected: false };
    } catch (errors) {
        const list = Array.isArray(errors) ? errors : [errors];
        return { rejected: true, errors: list.map(describe) };
    }
});

// ---- metadata ---------------------------------------------------------------------------------------------
await step("retrieveEntity", () => api.retrieveEntity({
    key: "LogicalName='account'",
    select: ["LogicalName", "EntitySetName", "PrimaryIdAttribute", "PrimaryNameAttribute"],
}));

await step("retrieveAttributes", async () => {
    const attributes = await api.retrieveAttributes({
        entityKey: "LogicalName='account'",
        castType: "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
        select: ["LogicalName"],
        expand: [{ property: "OptionSet", select: ["Options"] }],
    });
    const relationship = attributes.value.find((attribute) => attribute.LogicalName === "customertypecode");
    return {
        names: attributes.value.map((attribute) => attribute.LogicalName),
        customerLabels: relationship?.OptionSet?.Options?.map((option) => option.Label.UserLocalizedLabel.Label),
    };
});

await step("retrieveEntities", async () => {
    const entities = await api.retrieveEntities({ select: ["LogicalName", "EntitySetName"], filter: "LogicalName eq 'salesorder'" });
    return entities.value;
});

await step("retrieveRelationships", async () => {
    const relationships = await api.retrieveRelationships({
        select: ["SchemaName", "ReferencingEntity", "ReferencedEntity", "ReferencingEntityNavigationPropertyName"],
        filter: "SchemaName eq 'account_primary_contact'",
    });
    return relationships.value;
});

// ---- delete ---------------------------------------------------------------------------------------------
await step("deleteRecord", async () => {
    const deleted = await api.deleteRecord({ collection: "accounts", key: state.accountId });
    let status = null;
    try {
        await api.retrieve({ collection: "accounts", key: state.accountId });
    } catch (error) {
        status = error.status;
    }
    return { deleted, retrieveStatus: status };
});

await step("deleteMissing", () => api.deleteRecord({ collection: "accounts", key: state.accountId }));

process.stdout.write(JSON.stringify({ steps }, null, 1));

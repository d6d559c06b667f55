// A node-opcua server for Stacklight's interoperability tests: a second, independent OPC UA stack.
// Usage: node server.js --port P --pki DIR [--username U --password P]
// Prints one line "READY <certificate.der>" once listening; reads JSON commands, one per line, on stdin:
//   {"set": "Temperature", "value": 160}          new value, Good, source time now
//   {"set": "Sensor", "value": 1, "status": "BadSensorFailure"}
//   {"set": "Counter", "value": 3, "noSourceTime": true}
// and answers each with one line "OK" or "ERROR <reason>".
"use strict";
const fs = require("fs");
const path = require("path");
const readline = require("readline");
const {
    OPCUAServer, OPCUACertificateManager, Variant, DataType, DataValue, StatusCodes,
    MessageSecurityMode, SecurityPolicy, standardUnits, makeAccessLevelFlag, VariantArrayType,
} = require("node-opcua");

function option(name, fallback) {
    const at = process.argv.indexOf(`--${name}`);
    return at >= 0 ? process.argv[at + 1] : fallback;
}

const NAMESPACE = "urn:stacklight:interop";
// browse name, data type, initial value
const TYPED = [
    ["Boolean", DataType.Boolean, false],
    ["SByte", DataType.SByte, -5],
    ["Byte", DataType.Byte, 5],
    ["Int16", DataType.Int16, -300],
    ["UInt16", DataType.UInt16, 300],
    ["Int32", DataType.Int32, -70000],
    ["UInt32", DataType.UInt32, 70000],
    ["Int64", DataType.Int64, [0, 7]],
    ["UInt64", DataType.UInt64, [0, 7]],
    ["Float", DataType.Float, 0.5],
    ["Double", DataType.Double, 1.25],
    ["String", DataType.String, "idle"],
];

async function main() {
    const port = Number(option("port"));
    const pki = option("pki");
    const username = option("username", "operator");
    const password = option("password", "s3cret");
    const certificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "server"),
        automaticallyAcceptUnknownCertificate: true,
    });
    const server = new OPCUAServer({
        port,
        hostname: "127.0.0.1",
        resourcePath: "/interop",
        serverCertificateManager: certificateManager,
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
        securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256,
            SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss],
        allowAnonymous: true,
        userManager: { isValidUser: (user, secret) => user === username && secret === password },
        serverInfo: { applicationUri: "urn:stacklight:interop-server", productUri: "stacklight-interop" },
        maxConnectionsPerEndpoint: 50,
    });
    await server.initialize();

    const addressSpace = server.engine.addressSpace;
    // Alarms & Conditions methods (ConditionRefresh, Acknowledge, Confirm ... on the condition types),
    // which node-opcua leaves unbound unless asked: a server that offers A&C offers them.
    addressSpace.installAlarmsAndConditionsService();
    const ns = addressSpace.registerNamespace(NAMESPACE);
    const objects = addressSpace.rootFolder.objects;
    const plant = ns.addObject({ browseName: "Interop", nodeId: "s=Interop", organizedBy: objects, notifierOf: addressSpace.rootFolder.objects.server });
    const writable = makeAccessLevelFlag("CurrentRead | CurrentWrite");
    const variables = {};

    function addVariable(browseName, dataType, value, extra = {}) {
        const variable = ns.addVariable({
            componentOf: plant, browseName, nodeId: `s=Interop.${browseName}`, dataType,
            accessLevel: writable, userAccessLevel: writable, minimumSamplingInterval: 10, ...extra,
        });
        variable.setValueFromSource(new Variant({ dataType, arrayType: VariantArrayType.Scalar, value }), StatusCodes.Good, new Date());
        variables[browseName] = variable;
        return variable;
    }

    for (const [name, dataType, value] of TYPED) addVariable(name, dataType, value);
    addVariable("Counter", DataType.Double, 0);
    addVariable("Sensor", DataType.Double, 12.5);
    addVariable("ReadOnly", DataType.Double, 9, {
        accessLevel: makeAccessLevelFlag("CurrentRead"), userAccessLevel: makeAccessLevelFlag("CurrentRead") });
    const temperature = ns.addAnalogDataItem({
        componentOf: plant, browseName: "Temperature", nodeId: "s=Interop.Temperature", dataType: "Double",
        engineeringUnitsRange: { low: 0, high: 200 }, engineeringUnits: standardUnits.degree_celsius,
        accessLevel: writable, userAccessLevel: writable, minimumSamplingInterval: 10, eventSourceOf: plant,
    });
    temperature.setValueFromSource(new Variant({ dataType: DataType.Double, value: 20 }), StatusCodes.Good, new Date());
    variables.Temperature = temperature;

    // An OPC UA Alarms & Conditions alarm on the temperature: high at 150, high-high at 180.
    ns.instantiateExclusiveLimitAlarm("ExclusiveLimitAlarmType", {
        browseName: "TemperatureAlarm", nodeId: "s=Interop.TemperatureAlarm", componentOf: plant,
        conditionSource: temperature, conditionName: "TemperatureAlarm", inputNode: temperature,
        highLimit: 150, highHighLimit: 180, optionals: ["ConfirmedState", "Confirm"],
    });

    let counter = 0;
    setInterval(() => {
        counter += 1;
        variables.Counter.setValueFromSource(new Variant({ dataType: DataType.Double, value: counter }),
            StatusCodes.Good, new Date());
    }, 100);

    await server.start();
    const certificateFile = path.join(pki, "server_certificate.der");
    fs.writeFileSync(certificateFile, server.getCertificate());
    process.stdout.write(`READY ${certificateFile}\n`);

    const input = readline.createInterface({ input: process.stdin });
    input.on("line", (line) => {
        try {
            const command = JSON.parse(line);
            const variable = variables[command.set];
            if (!variable) throw new Error(`no variable ${command.set}`);
            const dataType = variable.dataTypeObj ? DataType[variable.dataTypeObj.browseName.name] : DataType.Double;
            const status = command.status ? StatusCodes[command.status] : StatusCodes.Good;
            if (status === undefined) throw new Error(`no status ${command.status}`);
            if (command.noSourceTime) {
                variable.setValueFromSource(new Variant({ dataType, arrayType: VariantArrayType.Scalar, value: command.value }), status);
                variable.$dataValue.sourceTimestamp = null;
                variable.$dataValue.sourcePicoseconds = 0;
                variable.touchValue();
            } else {
                variable.setValueFromSource(new Variant({ dataType, arrayType: VariantArrayType.Scalar, value: command.value }), status, new Date());
            }
            process.stdout.write("OK\n");
        } catch (error) {
            process.stdout.write(`ERROR ${error.message}\n`);
        }
    });
    input.on("close", async () => { await server.shutdown(0); process.exit(0); });
    process.on("SIGTERM", async () => { await server.shutdown(0); process.exit(0); });
}

main().catch((error) => { process.stderr.write(`${error.stack}\n`); process.exit(1); });

// The permissions proof: every AWS call the functions made in the recorded scenarios
// (tests/src/permissions, written by the record-aws-calls binary) must be allowed by the role
// template.yaml renders for that function, under every parameter set that deploys the scenario;
// every call in the hand-written must-deny list must be denied. The evaluator is
// @cloud-copilot/iam-simulate, not code of ours.
//
// Usage: node prove.mjs <template.yaml> <calls.json>
import { readFileSync } from 'node:fs'
import { runSimulation } from '@cloud-copilot/iam-simulate'
import { loadTemplate, render } from './template.mjs'

const [templatePath, callsPath] = process.argv.slice(2)
if (!templatePath || !callsPath) {
  console.error('usage: node prove.mjs <template.yaml> <calls.json>')
  process.exit(2)
}
const recording = JSON.parse(readFileSync(callsPath, 'utf8'))
const { region, account } = recording.facts
const secretArn = (name) => `arn:aws:secretsmanager:${region}:${account}:secret:${name}`
const functionArn = (name) => `arn:aws:lambda:${region}:${account}:function:${name}`

// Representative deployments. Values in braces are ARNs the recording made (facts).
const PARAMETER_SETS = [
  {
    name: 'defaults (single user), http provider with an admin secret',
    values: { ApiKeyProvider: 'http', ApiBaseUrl: 'https://api.example.com', ApiAdminSecretArn: '{api_admin_secret_arn}' },
    scenarios: ['rotate-postgres/single-user', 'rotate-mysql/single-user', 'rotate-api-key/http/admin-secret'],
  },
  {
    name: 'single user, customer managed key, VPC, role path and boundary, tracing',
    values: {
      KmsKeyArns: '{kms_key_arn}',
      VpcSubnetIds: 'subnet-0a1b2c3d4e5f60718,subnet-0a1b2c3d4e5f60719',
      VpcSecurityGroupIds: 'sg-0a1b2c3d4e5f60718',
      RolePath: '/rotation/',
      PermissionsBoundaryArn: `arn:aws:iam::${account}:policy/workload-boundary`,
      Tracing: 'Active',
    },
    scenarios: ['rotate-postgres/single-user', 'rotate-postgres/single-user/customer-managed-key', 'rotate-mysql/single-user'],
  },
  {
    name: 'alternating users, full master secrets',
    values: { RotationStrategy: 'alternating-users', MasterSecretArns: '{full_master_secret_arns}' },
    scenarios: ['rotate-postgres/alternating-users/full-master', 'rotate-mysql/alternating-users/full-master'],
  },
  {
    name: 'alternating users, RDS-managed master secrets',
    values: {
      RotationStrategy: 'alternating-users',
      MasterSecretArns: `${secretArn('rds!db-*')},${secretArn('rds!cluster-*')}`,
    },
    scenarios: [
      'rotate-postgres/alternating-users/rds-managed-instance-master',
      'rotate-postgres/alternating-users/rds-managed-cluster-master',
    ],
  },
  {
    name: 'aws-iam provider',
    values: { ApiKeyProvider: 'aws-iam' },
    scenarios: ['rotate-api-key/aws-iam'],
  },
]

function fill(value) {
  return String(value).replace(/\{(\w+)\}/g, (_, fact) => {
    const known = recording.facts[fact]
    if (known === undefined || known === '' || (Array.isArray(known) && known.length === 0)) {
      throw new Error(`parameter value names fact ${fact}, which the recording lacks`)
    }
    return Array.isArray(known) ? known.join(',') : known
  })
}

// The role of each function binary in a rendered template, with its policies.
function roles(resources) {
  const byBinary = {}
  for (const [name, resource] of Object.entries(resources)) {
    if (resource.Type !== 'AWS::Serverless::Function') continue
    const binary = resource.Metadata?.BuildProperties?.Binary
    const roleArn = resource.Properties.Role
    const roleName = Object.keys(resources).find((id) => roleArn === `arn:aws:rendered:${region}:${account}:${id}/Arn`)
    if (!binary || !roleName) throw new Error(`function ${name}: no Binary or no role of this template`)
    const role = resources[roleName].Properties
    if ((role.ManagedPolicyArns ?? []).length > 0) {
      throw new Error(`role ${roleName} has managed policies, which the proof cannot read: ${role.ManagedPolicyArns}`)
    }
    byBinary[binary] = {
      role: roleName,
      functionArn: resource.Properties.FunctionName ? functionArn(resource.Properties.FunctionName) : undefined,
      policies: (role.Policies ?? []).map((policy) => ({ name: policy.PolicyName, policy: policy.PolicyDocument })),
    }
  }
  return byBinary
}

// A KMS key's own policy decides whether IAM policies count at all. Every KMS check runs with
// the default key policy (the account's root, that is its IAM policies, may use the key), which
// README's KmsKeyArns assumes: without it every KMS call would be denied, must-deny ones
// included, and those checks would prove nothing.
const defaultKeyPolicy = () => ({
  Version: '2012-10-17',
  Statement: [{ Sid: 'EnableIamPolicies', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }],
})

async function decide(role, call) {
  const result = await runSimulation({
    identityPolicies: role.policies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: call.action.startsWith('kms:') ? defaultKeyPolicy() : undefined,
    request: {
      action: call.action,
      principal: `arn:aws:iam::${account}:role/${role.role}`,
      resource: { accountId: account, resource: call.resource },
      contextVariables: call.context ?? {},
    },
  }, {})
  if (result.errors) return `invalid request: ${JSON.stringify(result.errors)}`
  return result.overallResult
}

// Secrets Manager calls KMS with the caller's permissions when the secret has a customer
// managed key: Decrypt to read a value, GenerateDataKey to write one.
function kmsCallsBehind(call) {
  if (!call.secret_kms_key) return []
  const via = { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com`, 'kms:EncryptionContext:SecretARN': call.resource }
  const action = { 'secretsmanager:GetSecretValue': 'kms:Decrypt', 'secretsmanager:PutSecretValue': 'kms:GenerateDataKey' }[call.action]
  return action ? [{ action, resource: call.secret_kms_key, context: via, behind: call.action }] : []
}

// Calls no function of this set may make, whatever it is told.
function mustDeny(set, binary, role) {
  const own = role.functionArn
  const other = functionArn('someone-elses-rotation')
  const list = []
  const rotated = ['DescribeSecret', 'GetSecretValue', 'PutSecretValue', 'UpdateSecretVersionStage']
  for (const operation of rotated) {
    list.push({ why: 'a secret whose rotation function is another function', action: `secretsmanager:${operation}`, resource: secretArn('billing/db-AbCdEf'), context: { 'secretsmanager:resource/AllowRotationLambdaArn': other } })
    list.push({ why: 'a secret without rotation', action: `secretsmanager:${operation}`, resource: secretArn('unrelated-app-Zz09Yx'), context: {} })
  }
  for (const operation of ['DeleteSecret', 'UpdateSecret', 'RotateSecret', 'PutResourcePolicy', 'RestoreSecret']) {
    list.push({ why: 'a change to its own secret beyond a version', action: `secretsmanager:${operation}`, resource: secretArn('rotated-Ab12Cd'), context: { 'secretsmanager:resource/AllowRotationLambdaArn': own } })
  }
  list.push({ why: 'GetRandomPassword (passwords come from the OS CSPRNG)', action: 'secretsmanager:GetRandomPassword', resource: '*', context: {} })
  list.push({ why: 'a master secret not in MasterSecretArns', action: 'secretsmanager:GetSecretValue', resource: secretArn('other-team/master-QwErTy'), context: {} })
  list.push({ why: 'a master secret not in MasterSecretArns', action: 'secretsmanager:DescribeSecret', resource: secretArn('other-team/master-QwErTy'), context: {} })
  for (const master of [...set.masters, secretArn('rds!db-11111111-2222-3333-4444-555555555555-AbCdEf')]) {
    for (const operation of ['PutSecretValue', 'UpdateSecretVersionStage']) {
      list.push({ why: 'a change to a master secret', action: `secretsmanager:${operation}`, resource: master, context: {} })
    }
  }
  const foreignKey = `arn:aws:kms:${region}:${account}:key/00000000-1111-2222-3333-444444444444`
  for (const action of ['kms:Decrypt', 'kms:GenerateDataKey']) {
    list.push({ why: 'a KMS key not in KmsKeyArns', action, resource: foreignKey, context: { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } })
    list.push({ why: 'a KMS key used directly, not through Secrets Manager', action, resource: recording.facts.kms_key_arn, context: {} })
  }
  for (const user of ['user/alice', 'user/admins/alice', 'user/api-key-rotation-other/alice']) {
    for (const action of ['iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:ListAccessKeys']) {
      list.push({ why: 'an IAM user outside IamUserPath', action, resource: `arn:aws:iam::${account}:${user}`, context: {} })
    }
  }
  list.push({ why: 'IAM beyond access keys', action: 'iam:AttachUserPolicy', resource: `arn:aws:iam::${account}:user/api-key-rotation/alice`, context: {} })
  if (set.values.RotationStrategy !== 'alternating-users') {
    list.push({ why: 'RDS without alternating users', action: 'rds:DescribeDBInstances', resource: `arn:aws:rds:${region}:${account}:db:orders`, context: {} })
  }
  return list
}

const template = loadTemplate(templatePath)
const failures = []
let evaluated = 0
let denialsChecked = 0
let notTheRoles = 0
const covered = new Set()
for (const set of PARAMETER_SETS) {
  const values = Object.fromEntries(Object.entries(set.values).map(([name, value]) => [name, fill(value)]))
  set.masters = values.MasterSecretArns && !values.MasterSecretArns.includes('*') ? values.MasterSecretArns.split(',') : []
  set.values = values
  const { resources } = render(template, values, { region, account, stackName: 'rotation' })
  const byBinary = roles(resources)
  for (const scenarioName of set.scenarios) {
    const scenario = recording.scenarios.find((candidate) => candidate.name === scenarioName)
    if (!scenario) {
      failures.push(`[${set.name}] scenario ${scenarioName} is not in the recording`)
      continue
    }
    covered.add(scenarioName)
    const role = byBinary[scenario.function]
    if (!role) {
      failures.push(`[${set.name}] ${scenario.function} is not deployed, yet scenario ${scenarioName} needs it`)
      continue
    }
    // A scenario whose calls bypassed the recorder, or were all signed by another credential,
    // would pass with nothing evaluated: each must show the role writing a version.
    const roleCalls = scenario.calls.filter((call) => call.signed_by_role)
    if (!roleCalls.some((call) => call.action === 'secretsmanager:PutSecretValue')) {
      failures.push(`[${set.name}] ${scenario.function} (${scenarioName}): no PutSecretValue signed by the role was recorded (${roleCalls.length} role calls): the recording missed the function's calls`)
    }
    for (const call of scenario.calls) {
      if (!call.signed_by_role) {
        notTheRoles += 1
        continue
      }
      for (const check of [call, ...kmsCallsBehind(call)]) {
        evaluated += 1
        const decision = await decide(role, check)
        if (decision !== 'Allowed') {
          const behind = check.behind ? ` (Secrets Manager's call behind ${check.behind})` : ''
          failures.push(`[${set.name}] ${scenario.function} (${scenarioName}): ${check.action}${behind} on ${check.resource} with ${JSON.stringify(check.context)}: ${decision}, must be allowed`)
        }
      }
    }
  }
  for (const [binary, role] of Object.entries(byBinary)) {
    for (const check of mustDeny(set, binary, role)) {
      denialsChecked += 1
      const decision = await decide(role, check)
      if (decision === 'Allowed' || decision.startsWith('invalid')) {
        failures.push(`[${set.name}] ${binary}: ${check.action} on ${check.resource} with ${JSON.stringify(check.context)} (${check.why}): ${decision}, must be denied`)
      }
    }
  }
}
for (const scenario of recording.scenarios) {
  if (!covered.has(scenario.name)) failures.push(`scenario ${scenario.name} is in no parameter set`)
}
const recorded = recording.scenarios.reduce((sum, scenario) => sum + scenario.calls.length, 0)
console.log(`permissions: ${recorded} recorded AWS calls in ${recording.scenarios.length} scenarios (${notTheRoles} signed by a credential other than the role, not the role's)`)
console.log(`permissions: ${evaluated} calls evaluated allowed-or-not under ${PARAMETER_SETS.length} parameter sets, ${denialsChecked} must-deny calls checked`)
if (failures.length > 0) {
  console.error(`permissions: ${failures.length} failures:`)
  for (const failure of failures) console.error(`  ${failure}`)
  process.exit(1)
}
console.log('permissions: every recorded call allowed, every must-deny call denied')

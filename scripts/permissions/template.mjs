// Renders a CloudFormation/SAM template's resources for one set of parameter values: the
// intrinsic functions template.yaml uses (Ref, Fn::Sub, Fn::If, Fn::Equals, Fn::Not, Fn::And,
// Fn::Or, Fn::Join, Fn::Select, Fn::Split, Fn::GetAtt, Condition) and the pseudo parameters.
// An intrinsic it does not know is an error, so a template change cannot slip past the proof.
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

const SHORT_FORMS = ['Sub', 'If', 'Equals', 'Not', 'And', 'Or', 'Join', 'Select', 'Split', 'GetAtt', 'FindInMap', 'Base64', 'GetAZs', 'ImportValue', 'Cidr']

function customTags() {
  const tags = []
  for (const name of SHORT_FORMS) {
    const key = `Fn::${name}`
    const wrap = name === 'GetAtt'
      ? (value) => ({ [key]: typeof value === 'string' ? value.split('.') : value })
      : (value) => ({ [key]: value })
    tags.push({ tag: `!${name}`, resolve: (value) => wrap(value) })
    tags.push({ tag: `!${name}`, collection: 'seq', resolve: (value) => wrap(value.toJSON()) })
    tags.push({ tag: `!${name}`, collection: 'map', resolve: (value) => wrap(value.toJSON()) })
  }
  tags.push({ tag: '!Ref', resolve: (value) => ({ Ref: value }) })
  tags.push({ tag: '!Condition', resolve: (value) => ({ Condition: value }) })
  return tags
}

export function loadTemplate(path) {
  return parse(readFileSync(path, 'utf8'), { customTags: customTags() })
}

const NO_VALUE = Symbol('AWS::NoValue')

export function render(template, values, pseudo) {
  const parameters = {}
  for (const [name, declaration] of Object.entries(template.Parameters ?? {})) {
    const given = Object.hasOwn(values, name) ? values[name] : declaration.Default
    if (given === undefined) throw new Error(`parameter ${name} has no value and no default`)
    const text = Array.isArray(given) ? given.join(',') : String(given)
    if (declaration.AllowedValues && !declaration.AllowedValues.map(String).includes(text)) {
      throw new Error(`parameter ${name}=${text} is not one of ${declaration.AllowedValues.join(', ')}`)
    }
    if (declaration.AllowedPattern && !new RegExp(declaration.AllowedPattern).test(text)) {
      throw new Error(`parameter ${name}=${text} does not match ${declaration.AllowedPattern}`)
    }
    parameters[name] = declaration.Type.startsWith('CommaDelimitedList') || declaration.Type.startsWith('List<')
      ? text.split(',')
      : text
  }
  for (const name of Object.keys(values)) {
    if (!Object.hasOwn(parameters, name)) throw new Error(`parameter ${name} is not in the template`)
  }
  const refs = {
    'AWS::Region': pseudo.region,
    'AWS::AccountId': pseudo.account,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': pseudo.stackName,
    'AWS::StackId': `arn:aws:cloudformation:${pseudo.region}:${pseudo.account}:stack/${pseudo.stackName}/0`,
    'AWS::NoValue': NO_VALUE,
    ...parameters,
  }
  const conditions = {}
  const resources = template.Resources ?? {}
  const condition = (name) => {
    if (!Object.hasOwn(conditions, name)) {
      const declared = template.Conditions?.[name]
      if (declared === undefined) throw new Error(`condition ${name} is not declared`)
      conditions[name] = Boolean(evaluate(declared))
    }
    return conditions[name]
  }
  const ref = (name) => {
    if (Object.hasOwn(refs, name)) return refs[name]
    if (Object.hasOwn(resources, name)) return `${name}-physical-id`
    throw new Error(`Ref ${name}: no such parameter or resource`)
  }
  const getAtt = (resource, attribute) => {
    const declared = resources[resource]
    if (!declared) throw new Error(`GetAtt ${resource}.${attribute}: no such resource`)
    const name = declared.Properties?.FunctionName ?? declared.Properties?.RoleName
    if (attribute === 'Arn' && declared.Type === 'AWS::Serverless::Function' && name) {
      return `arn:aws:lambda:${pseudo.region}:${pseudo.account}:function:${evaluate(name)}`
    }
    return `arn:aws:rendered:${pseudo.region}:${pseudo.account}:${resource}/${attribute}`
  }
  const substitute = (text, variables) => text.replace(/\$\{(!?)([^}]+)\}/g, (whole, literal, name) => {
    if (literal) return `\${${name}}`
    if (Object.hasOwn(variables, name)) return String(variables[name])
    if (name.includes('.')) return getAtt(...name.split('.'))
    const value = ref(name)
    if (Array.isArray(value)) throw new Error(`Fn::Sub \${${name}}: a list cannot be substituted`)
    return String(value)
  })
  function evaluate(node) {
    if (Array.isArray(node)) return node.map(evaluate).filter((item) => item !== NO_VALUE)
    if (node === null || typeof node !== 'object') return node
    const keys = Object.keys(node)
    if (keys.length === 1) {
      const [key] = keys
      const argument = node[key]
      switch (key) {
        case 'Ref': return ref(argument)
        case 'Condition': if (typeof argument === 'string') return condition(argument); break
        case 'Fn::If': {
          const [name, whenTrue, whenFalse] = argument
          return evaluate(condition(name) ? whenTrue : whenFalse)
        }
        case 'Fn::Equals': {
          const [left, right] = argument.map(evaluate)
          return String(left) === String(right)
        }
        case 'Fn::Not': return !evaluate(argument[0])
        case 'Fn::And': return argument.every((item) => Boolean(evaluate(item)))
        case 'Fn::Or': return argument.some((item) => Boolean(evaluate(item)))
        case 'Fn::Join': {
          const [separator, list] = argument
          return evaluate(list).join(separator)
        }
        case 'Fn::Select': {
          const [index, list] = argument.map(evaluate)
          const chosen = list[Number(index)]
          if (chosen === undefined) throw new Error(`Fn::Select ${index}: out of range`)
          return chosen
        }
        case 'Fn::Split': {
          const [separator, text] = argument.map(evaluate)
          return String(text).split(separator)
        }
        case 'Fn::GetAtt': return getAtt(...argument)
        case 'Fn::Sub': {
          if (typeof argument === 'string') return substitute(argument, {})
          const [text, variables] = argument
          const resolved = Object.fromEntries(Object.entries(variables).map(([name, value]) => [name, evaluate(value)]))
          return substitute(text, resolved)
        }
        default:
          if (key.startsWith('Fn::')) throw new Error(`${key} is not supported by the proof's renderer`)
      }
    }
    const out = {}
    for (const [key, value] of Object.entries(node)) {
      const evaluated = evaluate(value)
      if (evaluated !== NO_VALUE) out[key] = evaluated
    }
    return out
  }
  const rendered = {}
  for (const [name, resource] of Object.entries(resources)) {
    if (resource.Condition && !condition(resource.Condition)) continue
    rendered[name] = { Type: resource.Type, Metadata: resource.Metadata, Properties: evaluate(resource.Properties ?? {}) }
  }
  return { resources: rendered, parameters }
}

// Log a fixed set of lines through winston + winston-loki, then close the transport, which sends
// what is still batched and waits for the answer. Exits non-zero if any push failed.
//
// usage: node push_winston.js <server url> <proto|json> <run id>
//   proto: winston-loki's default wire format (protobuf + snappy) and its default line format,
//          `<message> <JSON of the remaining meta>`;
//   json:  `json: true` (JSON push, the meta as structured metadata) with lines that are the
//          bare message (a transport format).
'use strict'

const winston = require('winston')
const LokiTransport = require('winston-loki')

async function main () {
  const [host, mode, run] = process.argv.slice(2)
  if (!host || !['proto', 'json'].includes(mode) || !run) {
    throw new Error('usage: node push_winston.js <server url> <proto|json> <run id>')
  }
  const failures = []
  const options = {
    host,
    labels: { job: 'winston', run },
    // One batch a minute at most: close() must be what sends everything.
    interval: 60,
    gracefulShutdown: false,
    onConnectionError: (err) => failures.push(err)
  }
  if (mode === 'json') {
    options.json = true
    options.format = winston.format.printf((info) => info.message)
  }
  const transport = new LokiTransport(options)
  // winston-loki silently falls back to JSON when its optional snappy binding does not load.
  if (mode === 'proto' && transport.batcher.contentType !== 'application/x-protobuf') {
    throw new Error('winston-loki fell back to JSON: the snappy package did not load')
  }
  const logger = winston.createLogger({ level: 'debug', transports: [transport] })

  logger.info('order placed', { trace_id: `t-${run}-1`, attempt: 1 })
  logger.info('order shipped', { trace_id: `t-${run}-2`, attempt: 2 })
  logger.warn('disk almost full: café ✓', { labels: { component: 'disk' } })
  logger.error('payment failed', { trace_id: `t-${run}-3`, attempt: 3, labels: { component: 'billing' } })
  logger.debug('cache warm')

  await transport.close()
  if (failures.length) {
    for (const err of failures) console.error(`push failed: ${err.message}`)
    process.exitCode = 1
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})

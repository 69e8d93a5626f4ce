// Sends an identify and a track with Segment's analytics-node, as a Node service would,
// to the bridge given as the first argument; exits 1 on any delivery error.
const { Analytics } = require('@segment/analytics-node')

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushInterval: 100, maxRetries: 0 })
analytics.on('error', (error) => {
  console.error('delivery failed:', error)
  process.exitCode = 1
})
analytics.identify({ userId: 'u-node', traits: { email: 'node@example.com', plan: 'pro' } })
analytics.track({ userId: 'u-node', event: 'Deployed', properties: { revenue: 4.5 } })
analytics.closeAndFlush().then(() => console.log('flushed'))

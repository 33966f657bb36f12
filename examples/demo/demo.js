// The demo page's script: plain JavaScript, no build step. `./tidings-browser.js` is the
// minified tidings/browser bundle the demo server builds with scripts/build.ts.
import { createClient } from './tidings-browser.js'

const $ = (id) => document.getElementById(id)
const config = await (await fetch('./config.json')).json()

const client = createClient({
  servers: config.servers,
  subscriptions: config.subscriptions,
  ...config.options,
})
window.tidings = client // to play with from the console

function describe(status) {
  switch (status.state) {
    case 'open':
      return `open: ${status.url}`
    case 'connecting':
      return `connecting: ${status.url}`
    case 'reconnecting':
      return `reconnecting to ${status.next} in ${status.delayMs} ms (lost ${status.url}: ${status.code}${status.reason ? ` ${status.reason}` : ''})`
    default:
      return `closed (${status.code}${status.reason ? ` ${status.reason}` : ''})`
  }
}

function showStatus(status) {
  if (status.url === undefined) return // before the first connection attempt
  $('status').textContent = describe(status)
  $('status').dataset.state = status.state
  const line = document.createElement('li')
  line.textContent = `${new Date().toLocaleTimeString()} ${describe(status)}`
  $('log').append(line)
  while ($('log').children.length > 50) $('log').firstElementChild.remove()
}

function showSubscriptions() {
  $('subscriptions').textContent = client.subscriptions.join(', ') || '(nothing yet)'
}

client.on('status', showStatus)
showStatus(client.status)
showSubscriptions()

client.on('message', (message) => {
  const item = document.createElement('li')
  const text = document.createElement('span')
  text.className = 'text'
  text.textContent = typeof message.text === 'string' ? message.text : JSON.stringify(message)
  const meta = document.createElement('small')
  meta.textContent = `${new Date().toLocaleTimeString()} · ${message.uniqueID ?? 'no uniqueID'}`
  item.dataset.uniqueId = message.uniqueID ?? ''
  item.append(text, meta)
  $('messages').append(item)
})

$('subscribe-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const id = $('subscribe-id').value.trim()
  if (id) client.subscribe(id)
  $('subscribe-id').value = ''
  showSubscriptions()
})

if (config.canPublish) {
  $('publish-form').hidden = false
  $('publish-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    const text = $('publish-text').value
    const response = await fetch('./publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subscribers: client.subscriptions, text }),
    })
    $('publish-text').value = ''
    const result = await response.json()
    $('publish-result').textContent = response.ok
      ? `Published ${result.uniqueID} through ${result.server}.`
      : `Not published: ${result.error.message}`
  })
}

if (config.shellCommand) {
  $('shell-hint').hidden = false
  $('shell-command').textContent = config.shellCommand
}

// The comparison app for the Slack acknowledgement benchmark: Bolt-JS with
// its default HTTP receiver and a handler that does nothing. Prints
// "listening on PORT" once it serves.
const { App, LogLevel } = require('@slack/bolt');

const app = new App({
  signingSecret: process.env.SLACK_SIGNING_SECRET,
  token: process.env.SLACK_BOT_TOKEN,
  // The same fake Slack Web API Storytime talks to (auth.test at start).
  clientOptions: { slackApiUrl: `${process.env.SLACK_API_URL}/` },
  logLevel: LogLevel.ERROR,
});

app.event('message', async () => {});

(async () => {
  const server = await app.start({ port: Number(process.env.PORT || 0), host: '127.0.0.1' });
  console.log(`listening on ${server.address().port}`);
})();

// Renders an AsyncAPI document to one HTML page with the AsyncAPI generator's html
// template. The generator is not among this directory's pinned dependencies (it is large
// and only needed by hand); install it beside them first, without saving it:
//
//   npm install --no-save --ignore-scripts @asyncapi/generator@3.4.1 @asyncapi/html-template@3.5.6
//   node render.cjs asyncapi.yaml out/        # writes out/index.html
//
// (The generator asks for Node.js 24 but renders with Node.js 20 as well.)
const path = require('node:path');
const Generator = require('@asyncapi/generator');

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node render.cjs DOCUMENT OUTPUT_DIR');
  process.exit(2);
}

(async () => {
  const template = path.dirname(require.resolve('@asyncapi/html-template/package.json'));
  const generator = new Generator(template, path.resolve(output), {
    forceWrite: true,
    templateParams: { singleFile: 'true' },
  });
  await generator.generateFromFile(path.resolve(input));
  console.log(`wrote ${path.join(output, 'index.html')}`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});

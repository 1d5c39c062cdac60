import { render } from 'preact';

import { App } from './app';
import { store } from './store';
import './styles.css';

const root = document.getElementById('app')!;
const draw = () => render(<App />, root);
store.subscribe(draw);
draw();
void store.boot();
